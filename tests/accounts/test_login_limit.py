"""The log-in limit counts the account Django's log-in would use, from one address and from many, and
guards the admin's log-in too."""

import pytest
from django.contrib.auth import authenticate
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import LoginFailure

RIGHT = "pw-for-tests-1"


def _login(client, username, password, *, ip="192.0.2.1", url=None):
    return client.post(url or reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def _logged_in(client):
    return "_auth_user_id" in client.session


# Names that Django's log-in form turns into "student": padding, other Unicode spaces, full-width
# letters (NFKC), and capitals (which we fold so that they count with the rest).
VARIANTS = ["student ", "   student", "student\u00a0", "\uff53\uff54\uff55\uff44\uff45\uff4e\uff54", "STUDENT"]


def test_it_counts_padded_and_unicode_names_against_the_same_account(client, student):
    for name in VARIANTS:
        assert _login(client, name, "wrong").status_code == 200
    assert set(LoginFailure.objects.values_list("username", flat=True)) == {"student"}
    response = _login(client, "student", RIGHT)
    assert response.status_code == 429 and not _logged_in(client)


@pytest.mark.parametrize("padded", ["student" + " " * 25, "\uff53\uff54\uff55\uff44\uff45\uff4e\uff54"])
def test_it_refuses_the_right_password_with_a_padded_name_while_locked(client, student, padded):
    for _ in range(5):
        _login(client, "student", "wrong")
    response = _login(client, padded, RIGHT)
    assert response.status_code == 429 and not _logged_in(client)
    assert "Too many wrong passwords" in response.content.decode()


def test_it_locks_an_account_attacked_from_many_addresses(client, student, settings):
    settings.JOURNEY_LOGIN_MAX_ACCOUNT_FAILURES = 12
    for n in range(12):  # no address reaches the per-address limit of 5
        _login(client, "student", "wrong", ip=f"203.0.113.{n}")
    response = _login(client, "student", RIGHT, ip="198.51.100.7")
    assert response.status_code == 429 and not _logged_in(client)


def test_one_address_guessing_many_accounts_is_paused(client, student, settings):
    settings.JOURNEY_LOGIN_MAX_ADDRESS_FAILURES = 10
    for n in range(10):
        _login(client, f"someone{n}", "wrong", ip="203.0.113.5")
    assert _login(client, "student", RIGHT, ip="203.0.113.5").status_code == 429
    # Another address is not paused by it.
    assert _login(client, "student", RIGHT, ip="198.51.100.7").status_code == 302


def test_a_refused_try_while_paused_does_not_extend_the_pause(client, student):
    for _ in range(5):
        _login(client, "student", "wrong")
    for _ in range(3):
        _login(client, "student", "wrong")
    assert LoginFailure.objects.count() == 5


def test_every_authenticate_call_is_refused_while_paused(student):
    """The backend refuses whatever path skips the log-in forms, and counts wrong passwords there too."""
    request = RequestFactory().post("/somewhere/", REMOTE_ADDR="192.0.2.1")
    for _ in range(5):
        assert authenticate(request, username="student", password="wrong") is None
    assert LoginFailure.objects.count() == 5
    assert authenticate(request, username=" student ", password=RIGHT) is None
    assert LoginFailure.objects.count() == 5


@pytest.fixture
def admin_user(make_user):
    user = make_user("boss", role="instructor")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def test_the_admin_log_in_is_behind_the_same_limit(client, admin_user):
    url = reverse("admin:login")
    for _ in range(5):
        assert _login(client, "boss", "wrong", url=url).status_code == 200
    response = _login(client, "boss", RIGHT, url=url)
    assert not _logged_in(client)
    assert "Too many wrong passwords" in response.content.decode()
    # Wrong passwords at the admin count for the site's log-in too: it is one account.
    assert _login(client, "boss", RIGHT).status_code == 429


def test_the_admin_log_in_still_works(client, admin_user):
    response = _login(client, "boss", RIGHT, url=reverse("admin:login"))
    assert response.status_code == 302 and _logged_in(client)
