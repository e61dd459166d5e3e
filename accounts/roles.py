"""Who a user is on the site: a student or an instructor, by the Django group they are in."""

from __future__ import annotations

STUDENT_GROUP = "student"
INSTRUCTOR_GROUP = "instructor"


def is_instructor(user) -> bool:
    if not user.is_authenticated:
        return False
    # Asked by a view and by each selector it calls: remember the answer on this user object.
    if not hasattr(user, "_is_instructor"):
        user._is_instructor = user.is_superuser or user.groups.filter(name=INSTRUCTOR_GROUP).exists()
    return user._is_instructor
