"""The receipt's staff views: the browser print view and the PDF download."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBase
from django.views.decorators.http import require_GET

from dispatch import policy
from dispatch.models import Case
from dispatch.policy import Op
from dispatch.selectors import case_for
from intake import receipt


def _receipt_case(request, code: str) -> Case:
    """The case, if the user is counter staff of the centre that took it in.

    The receipt's QR carries the resident's tracking token: whoever holds it can rate, urge and
    reopen as the resident. Everyone else gets the same 404 as for a case that does not exist.
    """
    case = case_for(request.user, code=code)
    if not policy.allows(Op.RECEIPT, policy.Subject(request.user, case)):
        raise Http404
    return case


def _headers(response: HttpResponseBase) -> HttpResponseBase:
    # The receipt carries the tracking token (in the QR): keep it out of shared caches.
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


@login_required
@require_GET
def receipt_print(request, code: str):
    """The receipt as a page the browser prints (?size=a4|a5|80mm)."""
    case = _receipt_case(request, code)
    size = receipt.clean_size(request.GET.get("size"))
    html = receipt.render_receipt_html(case, size=size, request=request)
    return _headers(HttpResponse(html))


@login_required
@require_GET
def receipt_pdf(request, code: str):
    """The stored PDF (rendered now if missing); other paper sizes are rendered on demand."""
    case = _receipt_case(request, code)
    size = receipt.clean_size(request.GET.get("size"))
    filename = (
        f"receipt-{case.code}.pdf"
        if size == receipt.DEFAULT_SIZE
        else (f"receipt-{case.code}-{size}.pdf")
    )
    if size == receipt.DEFAULT_SIZE:
        if not case.receipt_pdf or not case.receipt_pdf.storage.exists(case.receipt_pdf.name):
            receipt.store_receipt_pdf(case_id=case.pk)
            case.refresh_from_db(fields=["receipt_pdf"])
        if case.receipt_pdf:
            stored = FileResponse(
                case.receipt_pdf.open("rb"),
                as_attachment=True,
                filename=filename,
                content_type="application/pdf",
            )
            return _headers(stored)
    pdf = receipt.render_receipt_pdf(case, size=size)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return _headers(response)
