"""Signing up, the profile page, password change and reset, and the log-in limit."""

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from accounts.models import LoginFailure

pytestmark = pytest.mark.django_db


def test_it_signs_up_a_student_and_logs_them_in(client):
    response = client.post(
        reverse("accounts:signup"),
        {"username": "newbie", "email": "n@example.com", "password1": "a-long-pass-77", "password2": "a-long-pass-77"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("dashboard:me")
    user = get_user_model().objects.get(username="newbie")
    assert user.email == "n@example.com"
    assert list(user.groups.values_list("name", flat=True)) == ["student"]
    assert client.get(reverse("dashboard:me")).status_code == 200


def test_it_refuses_a_sign_up_with_mismatched_passwords(client):
    response = client.post(
        reverse("accounts:signup"),
        {"username": "newbie", "email": "n@example.com", "password1": "a-long-pass-77", "password2": "other-pass-77"},
    )
    assert response.status_code == 200
    assert not get_user_model().objects.filter(username="newbie").exists()
    page = response.content.decode()
    # Beside the field it is about, in words, not under the form's internal field names.
    assert '<div id="id_password2_error"><p class="error" role="alert">The two passwords are not the same' in page
    assert 'aria-describedby="id_password2_error"' in page and "<li>password2" not in page
    assert 'value="newbie"' in page and 'value="n@example.com"' in page


def test_the_sign_up_form_says_what_a_password_needs_before_the_first_try(client):
    page = client.get(reverse("accounts:signup")).content.decode()
    assert "At least 8 characters, not all digits" in page
    assert (
        'aria-describedby="id_password1_helptext"' in page and '<small class="help" id="id_password1_helptext">' in page
    )


def test_it_saves_the_profile(client, student):
    client.force_login(student)
    assert client.get(reverse("accounts:profile")).status_code == 200
    response = client.post(
        reverse("accounts:profile"), {"first_name": "Sam", "last_name": "Lee", "email": "sam@example.com"}
    )
    assert response.status_code == 302
    student.refresh_from_db()
    assert (student.first_name, student.last_name, student.email) == ("Sam", "Lee", "sam@example.com")


def test_it_changes_the_password(client, student):
    client.force_login(student)
    assert client.get(reverse("password_change")).status_code == 200
    response = client.post(
        reverse("password_change"),
        {"old_password": "pw-for-tests-1", "new_password1": "brand-new-pw-99", "new_password2": "brand-new-pw-99"},
    )
    assert response["Location"] == reverse("password_change_done")
    student.refresh_from_db()
    assert student.check_password("brand-new-pw-99")


def test_it_mails_a_working_password_reset_link(client, student):
    student.email = "s@example.com"
    student.save()
    response = client.post(reverse("password_reset"), {"email": "s@example.com"})
    assert response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/password/reset/" in line)
    path = link.split("testserver", 1)[1]
    form_url = client.get(path)["Location"]  # Django swaps the token for a session marker
    response = client.post(form_url, {"new_password1": "reset-pw-4242", "new_password2": "reset-pw-4242"})
    assert response["Location"] == reverse("password_reset_complete")
    student.refresh_from_db()
    assert student.check_password("reset-pw-4242")


def _login(client, password, username="student"):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_it_refuses_log_in_after_five_wrong_passwords_even_with_the_right_one(client, student):
    for _ in range(5):
        assert _login(client, "wrong").status_code == 200
    response = _login(client, "pw-for-tests-1")
    assert response.status_code == 429
    assert "Too many wrong passwords" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_it_counts_failures_per_username(client, student, student2):
    for _ in range(5):
        _login(client, "wrong")
    assert _login(client, "pw-for-tests-1", username="student2").status_code == 302


def test_it_forgets_failures_older_than_the_window(client, student):
    from datetime import timedelta

    from django.utils import timezone

    for _ in range(5):
        _login(client, "wrong")
    LoginFailure.objects.update(at=timezone.now() - timedelta(minutes=16))
    assert _login(client, "pw-for-tests-1").status_code == 302


def test_a_good_log_in_clears_the_failures(client, student):
    for _ in range(4):
        _login(client, "wrong")
    assert _login(client, "pw-for-tests-1").status_code == 302
    assert not LoginFailure.objects.filter(username="student").exists()


def test_it_counts_the_client_address_a_trusted_proxy_saw(client, student, settings):
    settings.JOURNEY_TRUSTED_PROXIES = 1
    for _ in range(5):
        _login_from(client, "wrong", forwarded="203.0.113.9")
    # Another client behind the same proxy is not paused, even when it forges an earlier hop.
    assert _login_from(client, "pw-for-tests-1", forwarded="203.0.113.9, 198.51.100.7").status_code == 302
    assert set(LoginFailure.objects.values_list("ip", flat=True)) == {"203.0.113.9"}


def test_it_ignores_x_forwarded_for_without_trusted_proxies(client, student):
    for n in range(5):
        _login_from(client, "wrong", forwarded=f"203.0.113.{n}")
    assert _login_from(client, "pw-for-tests-1", forwarded="198.51.100.7").status_code == 429


def _login_from(client, password, *, forwarded):
    return client.post(reverse("login"), {"username": "student", "password": password}, HTTP_X_FORWARDED_FOR=forwarded)


def test_sign_up_from_a_join_link_goes_back_to_the_link(client):
    target = "/classes/join/ABC123/"
    page = client.get(reverse("accounts:signup"), {"next": target})
    assert f'name="next" value="{target}"' in page.content.decode()
    response = client.post(
        reverse("accounts:signup"),
        {"username": "newbie", "email": "n@example.com", "password1": "a-long-pass-77", "password2": "a-long-pass-77",
         "next": target},
    )  # fmt: skip
    assert response["Location"] == target


def test_sign_up_never_redirects_to_another_site(client):
    response = client.post(
        reverse("accounts:signup"),
        {"username": "newbie", "email": "n@example.com", "password1": "a-long-pass-77", "password2": "a-long-pass-77",
         "next": "https://evil.example/"},
    )  # fmt: skip
    assert response["Location"] == reverse("dashboard:me")
