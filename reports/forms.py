"""What the report pages accept: a scope and a month; a list behind a dashboard number."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from dispatch import dashboard, figures
from reports.content import MONTH_PATTERN

BLANK = [("", "")]
PERIOD_CHOICES = list(dashboard.PERIODS.items())
FACT_CHOICES = BLANK + [(f.name, f.label) for f in figures.FACTS]
LIST_CHOICES = BLANK + list(dashboard.OPEN_LISTS.items())
DIMENSION_CHOICES = BLANK + list(dashboard.DIMENSIONS.items())


class MonthlyForm(forms.Form):
    """The report page's choice; anything unreadable falls back to the defaults."""

    region = forms.CharField(required=False, max_length=15)
    month = forms.RegexField(regex=MONTH_PATTERN, required=False)


class CaseListForm(forms.Form):
    """The list behind one number, with the dashboard's own parameters (``dashboard_cases``)."""

    region = forms.CharField(required=False, max_length=15)
    period = forms.ChoiceField(choices=PERIOD_CHOICES, required=False)
    start = forms.DateField(required=False)
    end = forms.DateField(required=False)
    fact = forms.ChoiceField(choices=FACT_CHOICES, required=False)
    # The dashboard's parameter name (``?list=overdue``), though it shadows the builtin here.
    list = forms.ChoiceField(choices=LIST_CHOICES, required=False)
    dim = forms.ChoiceField(choices=DIMENSION_CHOICES, required=False)
    # The row of a breakdown: a primary key.
    key = forms.RegexField(regex=r"^\d{1,12}$", required=False)

    def clean(self):
        data = super().clean()
        if bool(data.get("fact")) == bool(data.get("list")):
            raise forms.ValidationError(_("请选择一个清单"), code="list")
        return data
