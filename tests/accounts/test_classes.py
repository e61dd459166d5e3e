"""Creating and joining classes, co-instructors, deadlines and extensions."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import ClassMembership, Classroom, Extension, QuizDeadline, Role

pytestmark = pytest.mark.django_db


def test_an_instructor_creates_a_class_and_gets_a_code_and_link(client, instructor):
    client.force_login(instructor)
    response = client.post(reverse("dashboard:class_create"), {"name": "Evening group"})
    classroom = Classroom.objects.get(name="Evening group")
    assert response["Location"] == reverse("dashboard:class_settings", args=[classroom.pk])
    assert len(classroom.code) == 8
    assert ClassMembership.objects.get(classroom=classroom, user=instructor).role == Role.INSTRUCTOR
    page = client.get(response["Location"]).content.decode()
    assert classroom.code in page and reverse("dashboard:class_join_link", args=[classroom.code]) in page


def test_the_class_list_counts_each_classs_students(client, classroom, instructor):
    client.force_login(instructor)
    assert "· 2 students ·" in client.get(reverse("dashboard:classes")).content.decode()


def test_a_student_cannot_create_a_class(client, student):
    client.force_login(student)
    assert client.post(reverse("dashboard:class_create"), {"name": "Mine"}).status_code == 403
    assert not Classroom.objects.exists()


def test_a_student_joins_with_the_code_in_any_case(client, instructor, student):
    classroom = services.classroom_create(by=instructor, name="A")
    client.force_login(student)
    response = client.post(reverse("dashboard:class_join"), {"code": classroom.code.lower()})
    assert response.status_code == 302
    assert ClassMembership.objects.get(classroom=classroom, user=student).role == Role.STUDENT


def test_a_wrong_code_says_so(client, student):
    client.force_login(student)
    response = client.post(reverse("dashboard:class_join"), {"code": "NOPE2345"})
    assert response.status_code == 200 and "No class has that code" in response.content.decode()


def test_the_join_link_asks_first_then_joins_on_post(client, instructor, student):
    classroom = services.classroom_create(by=instructor, name="A")
    client.force_login(student)
    url = reverse("dashboard:class_join_link", args=[classroom.code])
    assert client.get(url).status_code == 200
    assert not ClassMembership.objects.filter(user=student).exists()
    client.post(url)
    assert ClassMembership.objects.filter(classroom=classroom, user=student, role=Role.STUDENT).exists()


def test_a_student_may_be_in_several_classes(instructor, other_instructor, student):
    a = services.classroom_create(by=instructor, name="A")
    b = services.classroom_create(by=other_instructor, name="B")
    services.classroom_join(user=student, code=a.code)
    services.classroom_join(user=student, code=b.code)
    services.classroom_join(user=student, code=b.code)  # twice changes nothing
    assert set(ClassMembership.objects.filter(user=student).values_list("classroom__name", flat=True)) == {"A", "B"}


def test_instructors_see_only_the_classes_they_teach(client, classroom, other_classroom, instructor):
    client.force_login(instructor)
    page = client.get(reverse("dashboard:classes")).content.decode()
    assert "Monday group" in page and "Tuesday group" not in page


def test_a_co_instructor_can_be_added_by_username(client, classroom, instructor, other_instructor):
    client.force_login(instructor)
    client.post(reverse("dashboard:class_instructor_add", args=[classroom.pk]), {"username": "teacher2"})
    assert ClassMembership.objects.get(classroom=classroom, user=other_instructor).role == Role.INSTRUCTOR
    client.force_login(other_instructor)
    assert client.get(reverse("dashboard:class_dashboard", args=[classroom.pk])).status_code == 200


def test_a_student_cannot_be_made_co_instructor(classroom, instructor, student):
    with pytest.raises(services.NoSuchUser):
        services.co_instructor_add(classroom=classroom, by=instructor, username=student.username)
    assert ClassMembership.objects.get(classroom=classroom, user=student).role == Role.STUDENT


def test_deadlines_and_extensions_are_set_through_the_settings_page(client, classroom, instructor, student, mini_bank):
    client.force_login(instructor)
    due = timezone.now() + timedelta(days=3)
    client.post(
        reverse("dashboard:class_deadline_set", args=[classroom.pk]),
        {"quiz": "machine-learning", "due_at": due.strftime("%Y-%m-%dT%H:%M")},
    )
    deadline = QuizDeadline.objects.get(classroom=classroom, quiz="machine-learning")
    client.post(
        reverse("dashboard:class_extension_grant", args=[classroom.pk]),
        {
            "deadline": deadline.pk,
            "student": student.pk,
            "due_at": (due + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert Extension.objects.get(deadline=deadline, student=student).due_at > deadline.due_at
    client.post(reverse("dashboard:class_deadline_delete", args=[classroom.pk, deadline.pk]))
    assert not QuizDeadline.objects.exists()


def test_an_extension_before_the_deadline_is_refused_beside_its_field_and_keeps_the_choices(
    client, classroom, instructor, student, student2, mini_bank
):
    due = (timezone.now() + timedelta(days=6)).replace(second=0, microsecond=0)
    deadline = services.deadline_set(classroom=classroom, by=instructor, quiz="machine-learning", due_at=due)
    client.force_login(instructor)
    earlier = (due - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        reverse("dashboard:class_extension_grant", args=[classroom.pk]),
        {"deadline": deadline.pk, "student": student2.pk, "due_at": earlier},
    )
    assert response.status_code == 400 and not Extension.objects.exists()
    page = response.content.decode()
    assert f"pick a moment after the class&#x27;s deadline ({due:%b} {due.day} {due:%Y, %H:%M} UTC)" in page
    assert f'value="{student2.pk}" selected' in page and f'value="{earlier}"' in page


@pytest.mark.parametrize("days, said", [(-1, "That moment has already passed"), (1, "Deadline saved.")])
def test_a_deadline_in_the_past_is_saved_with_a_warning(client, classroom, instructor, mini_bank, days, said):
    client.force_login(instructor)
    due = (timezone.now() + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")
    page = client.post(
        reverse("dashboard:class_deadline_set", args=[classroom.pk]), {"quiz": "machine-learning", "due_at": due},
        follow=True,
    ).content.decode()  # fmt: skip
    assert said in page and QuizDeadline.objects.filter(classroom=classroom).count() == 1
    assert ("already passed" in page) == (days < 0) and " UTC</td>" in page


def test_a_deadline_without_a_date_says_so_beside_the_field(client, classroom, instructor, mini_bank):
    client.force_login(instructor)
    response = client.post(reverse("dashboard:class_deadline_set", args=[classroom.pk]), {"quiz": "machine-learning"})
    assert response.status_code == 400 and not QuizDeadline.objects.exists()
    assert (
        'class="field has-error"' in response.content.decode()
        and "This field is required." in response.content.decode()
    )


def test_an_extension_is_only_for_a_student_of_the_class(classroom, instructor, other_student):
    deadline = services.deadline_set(classroom=classroom, by=instructor, quiz="chapter", due_at=timezone.now())
    with pytest.raises(services.NoSuchUser):
        services.extension_grant(deadline=deadline, by=instructor, student=other_student, due_at=timezone.now())


def test_seed_demo_puts_both_demo_students_in_the_instructors_class(db):
    call_command("seed_demo", password="pw-demo-123")
    call_command("seed_demo", password="pw-demo-123")  # idempotent
    classroom = Classroom.objects.get(name="Demo class")
    assert Classroom.objects.count() == 1
    members = dict(ClassMembership.objects.filter(classroom=classroom).values_list("user__username", "role"))
    assert members == {"instructor": "instructor", "student1": "student", "student2": "student"}
