"""`manage.py seed_class`: a generated class an instructor can open, made once per seed."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import ClassMembership, Classroom, Role


@pytest.mark.django_db
def test_seed_class_gives_the_instructor_a_class_whose_roster_lists_its_students(client, bank, instructor):
    call_command("seed_class", instructor="teacher", students=4, seed=3, name="Big class")
    classroom = Classroom.objects.get(name="Big class")
    members = ClassMembership.objects.filter(classroom=classroom)
    assert members.filter(role=Role.INSTRUCTOR).get().user == instructor
    students = list(members.filter(role=Role.STUDENT).values_list("user__username", flat=True))
    assert len(students) == 4
    client.force_login(instructor)
    page = client.get(reverse("dashboard:class_dashboard", args=[classroom.pk])).content.decode()
    assert all(name in page for name in students)
    with pytest.raises(CommandError, match="exists"):
        call_command("seed_class", instructor="teacher", students=4, seed=3)


@pytest.mark.django_db
def test_seed_class_refuses_a_student_or_a_stranger_as_the_teacher(bank, student):
    for who in ("student", "nobody"):
        with pytest.raises(CommandError, match="No instructor"):
            call_command("seed_class", instructor=who, students=2)
    assert not Classroom.objects.exists()
