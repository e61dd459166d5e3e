"""Template filters of the quiz pages."""

from django import template

register = template.Library()


@register.filter
def percent(value):
    """0.734 -> '73%'; nothing yet -> an en dash."""
    if value is None or value == "":
        return "–"
    return f"{round(float(value) * 100)}%"


GRADER_VERDICTS = {"correct": "right", "partial": "partly right", "incorrect": "wrong", "needs_review": "unsure"}


@register.filter
def grader_verdict(value):
    """The free-text grader's verdict code in the words an instructor reads."""
    return GRADER_VERDICTS.get(value, value or "no verdict")
