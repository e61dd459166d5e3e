from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    """A dict's value in a template, where the key is itself a variable."""
    return mapping.get(key, key)
