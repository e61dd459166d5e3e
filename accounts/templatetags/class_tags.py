from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template

register = template.Library()

TENTH = Decimal("0.1")


@register.filter
def get_item(mapping, key):
    """A dict's value in a template, where the key is itself a variable."""
    return mapping.get(key, key)


@register.filter
def coord(value):
    """A chart coordinate with one decimal: what `floatformat:1` writes for a plain number (rounded half
    up from its shortest repr, no "-0.0"), without that filter's localisation work, which a chart of a
    few hundred shapes pays for on every request."""
    try:
        d = Decimal(str(value)).quantize(TENTH, ROUND_HALF_UP)
    except (InvalidOperation, ValueError, TypeError):
        return ""
    return f"{abs(d) if d == 0 else d:f}"
