from django import forms, template

register = template.Library()

#: Bootstrap's class for each kind of widget: one input style on every form.
_CHECK = (forms.CheckboxInput,)
_SELECT = (forms.Select, forms.SelectMultiple)


@register.filter
def fields_named(form, names: str):
    """The bound fields of ``form`` named in the space-separated ``names``, in that order."""
    return [form[name] for name in names.split() if name in form.fields]


def widget_class(widget) -> str:
    """The Bootstrap class of a widget: form-check-input, form-select or form-control."""
    if isinstance(widget, _CHECK):
        return "form-check-input"
    if isinstance(widget, (forms.RadioSelect, forms.CheckboxSelectMultiple)):
        return ""
    if isinstance(widget, _SELECT):
        return "form-select"
    return "form-control"


@register.filter
def styled(field):
    """The field's widget with the Bootstrap class of its kind, ``is-invalid`` when it has
    errors, and ``aria-describedby`` naming its help text and its errors (their ids are
    ``<id>-help`` and ``<id>-error``, see form_fields.html)."""
    widget = field.field.widget
    classes = [widget.attrs.get("class", ""), widget_class(widget)]
    if field.errors:
        classes.append("is-invalid")
    tokens = " ".join(classes).split()
    attrs = {"class": " ".join(dict.fromkeys(tokens))}  # once each, in order
    described = []
    if field.help_text:
        described.append(f"{field.auto_id}-help")
    if field.errors:
        described.append(f"{field.auto_id}-error")
        attrs["aria-invalid"] = "true"
    if described:
        attrs["aria-describedby"] = " ".join(described)
    return field.as_widget(attrs=attrs)


@register.filter
def is_checkbox(field) -> bool:
    return isinstance(field.field.widget, _CHECK)


@register.filter
def reveal(field) -> str:
    """``data-show-if``/``data-show-values`` for a field shown only for some value of
    another (the form's ``reveal``: ``{field: (controlling field, values)}``); forms.js
    hides it otherwise. Without JavaScript every field shows."""
    rule = getattr(field.form, "reveal", {}).get(field.name)
    if not rule:
        return ""
    control, values = rule
    prefix = f"{field.form.prefix}-" if field.form.prefix else ""
    return f' data-show-if="{prefix}{control}" data-show-values="{" ".join(values)}"'
