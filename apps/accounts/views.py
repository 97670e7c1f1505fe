from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.forms import ApiTokenForm
from apps.accounts.models import ApiToken


@login_required
def account(request):
    form = ApiTokenForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        _, new_key = ApiToken.issue(
            request.user, form.cleaned_data["name"], form.cleaned_data["expires_at"]
        )
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
