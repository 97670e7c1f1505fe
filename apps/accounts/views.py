from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from apps.accounts.forms import ApiTokenForm
from apps.accounts.lockout import lockout_message, lockout_minutes
from apps.accounts.models import ApiToken


@login_required
def account(request):
    form = ApiTokenForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        _, new_key = ApiToken.issue(request.user, data["name"], data["expires_at"], data["scope"])
        form = ApiTokenForm()
    return render(
        request,
        "accounts/account.html",
        {
            "form": form,
            "new_key": new_key,
            "tokens": request.user.api_tokens.all(),
            "memberships": request.user.memberships.select_related("team"),
        },
    )


@login_required
@require_POST
def revoke_token(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    token.delete()
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("accounts:account")


class PasswordChangeView(auth_views.PasswordChangeView):
    """Any logged-in user changes their own password (old one, new one twice, validators)."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:account")

    def form_valid(self, form):
        response = super().form_valid(form)  # keeps this session logged in
        messages.success(self.request, "Your password has been changed.")
        return response


def locked_out(request, original_response=None, credentials=None):
    """django-axes' lockout answer (``AXES_LOCKOUT_CALLABLE``): the login page, saying why.

    Used for the portal's and the admin's login alike; 429 like axes' own answer. The API's
    token exchange gets the reason as JSON.
    """
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": lockout_message()}, status=429)
    return render(
        request,
        "accounts/login.html",
        {
            "form": AuthenticationForm(request),
            "next": request.POST.get("next", request.GET.get("next", "")),
            "locked_out": True,
            "locked_out_minutes": lockout_minutes(),
        },
        status=429,
    )
