from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from people.selectors import roles_of


@login_required
def home(request):
    """The staff landing page: what this person's roles let them do."""
    return render(request, "home.html", {"roles": roles_of(request.user)})
