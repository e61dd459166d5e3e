"""Template filters of the quiz pages."""

from django import template

register = template.Library()


@register.filter
def percent(value):
    """0.734 -> '73%'; nothing yet -> an en dash."""
    if value is None or value == "":
        return "–"
    return f"{round(float(value) * 100)}%"
