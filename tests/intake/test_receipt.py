"""The receipt (受理单): stored PDF with embedded CJK fonts, a QR a real decoder reads, escaping,
the restricted fetcher, the print view's sizes, and who may open it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from dispatch import services
from dispatch.models import Case, PartyRole, RoutingRule
from dispatch.states import Status
from grids.models import Level
from intake import fonts, receipt
from intake import pdf as document_pdf
from intake.qr import qr_matrix, qr_svg, qr_version, tracking_url
from intake.receipt import store_receipt_pdf
from people.models import Role
from tests import factories as f
from tests.intake.intake_helpers import APPLICANT, register_via_http

PUBLIC = "https://zz.qinghe.example.cn"
RARE = "𠮷堃喆燊"


@pytest.fixture(scope="module", autouse=True)
def prepared_fonts():
    """What the setup script runs; idempotent and fast once done."""
    call_command("prepare_fonts", verbosity=0)
    assert fonts.prepared_fonts() is not None


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PUBLIC_BASE_URL = PUBLIC
    return settings.MEDIA_ROOT


@pytest.fixture
def fresh_pdf_environment():
    """Forget the per-process fonts and stylesheet before and after the test."""
    receipt.RENDERER.forget()
    yield
    receipt.RENDERER.forget()


def register(
    tree,
    people,
    django_capture_on_commit_callbacks,
    *,
    summary=None,
    applicant="𠮷喆明",
    phone="13912345678",
    reject=None,
):
    """Open and register (or refuse) a case the way the intake service does, then commit."""
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            case = f.case(
                region=tree.village_a1,
                owner_unit=tree.centre_a,
                actor=people.alice,
                summary=summary or f"楼上装修噪音扰民（{RARE}）",
                parties=[
                    (f.party(name=applicant, phone=phone), PartyRole.APPLICANT),
                    (f.party(name="李四", phone="13800001111"), PartyRole.RESPONDENT),
                ],
            )
            if reject:
                case = services.reject_case(
                    case=case, actor=people.alice, reason=reject[0], referral=reject[1]
                )
            else:
                case = services.register_case(case=case, actor=people.alice)
            receipt.queue_receipt(case)
    return Case.objects.get(pk=case.pk)


def run(*args: str, stdin: bytes | None = None) -> str:
    return subprocess.run(args, check=True, capture_output=True, input=stdin).stdout.decode()


def pdf_file(case: Case) -> Path:
    assert case.receipt_pdf, "no receipt stored"
    path = Path(case.receipt_pdf.path)
    assert path.is_file()
    return path


def decode_qr(pdf: Path, tmp_path: Path) -> str:
    prefix = tmp_path / "page"
    run("pdftoppm", "-r", "200", "-png", "-f", "1", "-l", "1", str(pdf), str(prefix))
    image = next(tmp_path.glob("page*.png"))
    return run("zbarimg", "--quiet", "--raw", str(image)).strip()


# --- the stored PDF -------------------------------------------------------------------------


def test_pdf_is_stored_after_registering_with_embedded_cjk_font(
    tree, people, django_capture_on_commit_callbacks, tmp_path
):
    case = register(tree, people, django_capture_on_commit_callbacks)
    pdf = pdf_file(case)
    assert pdf.read_bytes().startswith(b"%PDF")

    listing = run("pdffonts", str(pdf))
    embedded = [line for line in listing.splitlines()[2:] if line.strip()]
    assert embedded, listing
    assert any("ZZ-Receipt-Sans" in line for line in embedded), listing
    for line in embedded:  # name type encoding emb sub uni: every font embedded, subset
        assert re.search(r"\byes\s+yes\s+yes\b", line), line

    text = run("pdftotext", "-enc", "UTF-8", str(pdf), "-")
    assert case.code in text
    assert "兴隆台镇综治中心" in text
    assert RARE in text  # the summary, including U+20BB7 outside the BMP
    assert "𠮷*明" in text  # the applicant's masked name keeps the rare surname
    assert "139****5678" in text
    assert "13912345678" not in text and "𠮷喆明" not in text
    assert "A001" in text  # the clerk's work number
    assert "0311-12345678" in text  # the centre's phone
    assert "邻里纠纷" in text
    assert "受理回执" in text


def test_qr_in_the_pdf_decodes_to_the_public_tracking_url(
    tree, people, django_capture_on_commit_callbacks, tmp_path
):
    case = register(tree, people, django_capture_on_commit_callbacks)
    decoded = decode_qr(pdf_file(case), tmp_path)
    assert decoded == f"{PUBLIC}/t/{case.tracking_token}"
    assert decoded == tracking_url(case)


@pytest.mark.usefixtures("cats")
def test_clerk_registers_over_http_and_the_receipt_qr_opens_the_tracking_page(
    client, tree, people, django_capture_on_commit_callbacks, tmp_path
):
    """The whole counter path: the intake screen, the stored PDF, a real QR decoder, the
    resident's page at the decoded URL showing the current step."""
    client.force_login(people.alice)
    with django_capture_on_commit_callbacks(execute=True):
        case = register_via_http(client, tree)
    case.refresh_from_db()
    pdf = pdf_file(case)
    assert "ZZ-Receipt-Sans" in run("pdffonts", str(pdf))
    text = run("pdftotext", "-enc", "UTF-8", str(pdf), "-")
    assert case.code in text and "王*明" in text and APPLICANT["name"] not in text

    url = decode_qr(pdf, tmp_path)
    assert url == f"{PUBLIC}/t/{case.tracking_token}"
    client.logout()
    page = client.get(url.removeprefix(PUBLIC))
    assert page.status_code == 200
    html = page.content.decode()
    assert case.code in html
    assert 'aria-current="step"><span class="label">案卷建立</span>' in html


def test_qr_is_low_density():
    url = f"{PUBLIC}/t/{'A' * 22}"
    assert qr_version(url) <= 4  # 33 x 33 modules or fewer
    assert len(qr_matrix(url)) == 17 + 4 * qr_version(url)


def test_rendering_again_replaces_the_file(tree, people, django_capture_on_commit_callbacks):
    case = register(tree, people, django_capture_on_commit_callbacks)
    first = pdf_file(case)
    store_receipt_pdf(case_id=case.pk)  # a second run of the receipt job
    case.refresh_from_db()
    second = pdf_file(case)
    assert second != first
    assert not first.exists()
    assert len(list(second.parent.glob(f"{case.code}-*.pdf"))) == 1


def test_refused_case_prints_reason_and_referral(tree, people, django_capture_on_commit_callbacks):
    case = register(
        tree,
        people,
        django_capture_on_commit_callbacks,
        reject=("属于法院审理范围的借贷纠纷", "青禾县人民法院诉讼服务中心"),
    )
    assert case.status == Status.REJECTED
    text = run("pdftotext", "-enc", "UTF-8", str(pdf_file(case)), "-")
    assert "不予受理告知单" in text
    assert "属于法院审理范围的借贷纠纷" in text
    assert "青禾县人民法院诉讼服务中心" in text
    assert "答复期限" not in text and "预计答复" not in text


# --- escaping ---------------------------------------------------------------------------------

EVIL = '<script>alert("x")</script><img src="http://127.0.0.1:9/p.png"><b>粗体</b>'


def test_html_in_the_summary_is_inert_in_print_view_and_pdf(
    client, tree, people, django_capture_on_commit_callbacks
):
    case = register(tree, people, django_capture_on_commit_callbacks, summary=EVIL)
    client.force_login(people.alice)
    html = client.get(f"/intake/cases/{case.code}/receipt/").content.decode()
    assert "<script>alert" not in html
    assert '<img src="http://127.0.0.1' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "&lt;b&gt;粗体&lt;/b&gt;" in html

    text = run("pdftotext", "-enc", "UTF-8", str(pdf_file(case)), "-")
    flat = re.sub(r"\s+", "", text)
    assert '<script>alert("x")</script>' in flat  # shown as text, not run or dropped
    assert "<b>粗体</b>" in flat


# --- the restricted fetcher -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "file:///work/main/pyproject.toml",
        "http://127.0.0.1:9/x.png",
        "https://example.com/font.woff2",
        "ftp://example.com/x",
        "file://evil.example/share/x.css",
    ],
)
def test_fetcher_refuses_everything_but_static_files(url):
    fetcher = receipt.make_url_fetcher()
    with pytest.raises(receipt.ReceiptFetchError):
        fetcher(url)


def test_fetcher_refuses_traversal_out_of_static(settings):
    static = Path(settings.STATICFILES_DIRS[0])
    fetcher = receipt.make_url_fetcher()
    for url in (
        static.as_uri() + "/css/../../pyproject.toml",
        static.as_uri() + "/css/%2e%2e/%2e%2e/pyproject.toml",
        (static / ".." / "manage.py").as_uri(),
    ):
        with pytest.raises(receipt.ReceiptFetchError):
            fetcher(url)


def test_fetcher_serves_static_files_data_uris_and_prepared_fonts(settings):
    static = Path(settings.STATICFILES_DIRS[0])
    fetcher = receipt.make_url_fetcher()
    response = fetcher((static / "css" / "receipt.css").as_uri())
    assert b"@media print" in response.read()
    assert fetcher("data:text/plain;base64,5Y+X55CG").read().decode() == "受理"
    font = fonts.prepared_fonts()[0].path
    assert fetcher(font.as_uri()).read(4) == b"OTTO"


def test_pdf_render_does_not_fetch_a_forbidden_resource(monkeypatch):
    """Even markup that reached the renderer unescaped could not make it fetch anything."""
    from weasyprint.urls import URLFetcher

    fetched = []

    def record(self, url, headers=None):  # the base class: network, file and data fetches
        fetched.append(url)
        raise OSError("not here")

    monkeypatch.setattr(URLFetcher, "fetch", record)
    refused = []
    monkeypatch.setattr(
        document_pdf,
        "DocumentFetchError",
        type(
            "Recorded", (ValueError,), {"__init__": lambda self, message: refused.append(message)}
        ),
    )
    pdf = receipt.html_to_pdf(
        '<p>受理</p><img src="file:///etc/hostname"><img src="http://127.0.0.1:9/a.png">'
        '<link rel="stylesheet" href="https://example.com/x.css">'
    )
    assert pdf.startswith(b"%PDF")
    assert fetched == []
    assert len(refused) == 3, refused


# --- the print view ---------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "page"), [("a4", "A4"), ("a5", "A5"), ("80mm", "80mm 200mm")])
def test_print_view_sizes(client, tree, people, django_capture_on_commit_callbacks, size, page):
    case = register(tree, people, django_capture_on_commit_callbacks)
    client.force_login(people.alice)
    response = client.get(f"/intake/cases/{case.code}/receipt/", {"size": size})
    assert response.status_code == 200
    html = response.content.decode()
    assert f"@page {{ size: {page};" in html
    assert f'class="receipt size-{size}"' in html
    assert case.code in html
    assert "𠮷*明" in html and "139****5678" in html
    assert "𠮷喆明" not in html and "13912345678" not in html
    assert "A001" in html and "0311-12345678" in html
    assert "@media print" not in html  # the stylesheet is linked, not inlined
    assert "/static/css/receipt.css" in html
    assert response["Cache-Control"] == "private, no-store"


def test_print_view_qr_uses_the_public_base_url_not_the_host_header(
    client, tree, people, django_capture_on_commit_callbacks
):
    case = register(tree, people, django_capture_on_commit_callbacks)
    client.force_login(people.alice)
    with override_settings(ALLOWED_HOSTS=["*"]):
        html = client.get(
            f"/intake/cases/{case.code}/receipt/", HTTP_HOST="phish.example.com"
        ).content.decode()
    expected = qr_svg(f"{PUBLIC}/t/{case.tracking_token}", title="扫码查询办理进度")
    assert str(expected) in html
    assert "phish.example.com" not in html


def test_unknown_size_falls_back_to_a4(client, tree, people, django_capture_on_commit_callbacks):
    case = register(tree, people, django_capture_on_commit_callbacks)
    client.force_login(people.alice)
    html = client.get(
        f"/intake/cases/{case.code}/receipt/", {"size": "A4; } body { display:none"}
    ).content.decode()
    assert "@page { size: A4;" in html
    assert "display:none" not in html


def test_promised_reply_date_is_estimated_from_the_routing_profile(
    client, tree, people, django_capture_on_commit_callbacks
):
    RoutingRule.objects.create(
        region=tree.town_a, handling_level=Level.TOWNSHIP, profile=f.profile(), auto_dispatch=False
    )
    case = register(tree, people, django_capture_on_commit_callbacks)
    assert case.reply_due_at is None
    client.force_login(people.alice)
    html = client.get(f"/intake/cases/{case.code}/receipt/").content.decode()
    assert "预计答复" in html
    promise = receipt.promised_reply(case)
    assert promise is not None and promise.estimated
    assert promise.at > case.registered_at
    assert f"{promise.at.year}年{promise.at.month}月{promise.at.day}日前" in html


def test_promised_reply_date_uses_the_deadline_column(
    tree, people, django_capture_on_commit_callbacks
):
    case = register(tree, people, django_capture_on_commit_callbacks)
    assert receipt.promised_reply(case) is None  # no profile, no rule: the line is left out
    Case.objects.filter(pk=case.pk).update(reply_due_at=case.reported_at.replace(year=2031))
    case.refresh_from_db()
    promise = receipt.promised_reply(case)
    assert promise is not None and not promise.estimated and promise.at.year == 2031


# --- the download -----------------------------------------------------------------------------


def test_pdf_download_serves_the_stored_file(
    client, tree, people, django_capture_on_commit_callbacks
):
    case = register(tree, people, django_capture_on_commit_callbacks)
    client.force_login(people.alice)
    response = client.get(f"/intake/cases/{case.code}/receipt.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f"receipt-{case.code}.pdf" in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == pdf_file(case).read_bytes()


def test_pdf_download_renders_a_missing_receipt(client, tree, people):
    case = f.case(region=tree.village_a1, owner_unit=tree.centre_a, actor=people.alice)
    assert not case.receipt_pdf
    client.force_login(people.alice)
    response = client.get(f"/intake/cases/{case.code}/receipt.pdf")
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"%PDF")
    case.refresh_from_db()
    assert case.receipt_pdf and Path(case.receipt_pdf.path).is_file()


def test_pdf_download_in_thermal_size(
    client, tree, people, tmp_path, django_capture_on_commit_callbacks
):
    case = register(tree, people, django_capture_on_commit_callbacks)
    client.force_login(people.alice)
    response = client.get(f"/intake/cases/{case.code}/receipt.pdf", {"size": "80mm"})
    assert response.status_code == 200
    pdf = tmp_path / "thermal.pdf"
    pdf.write_bytes(response.content)
    info = run("pdfinfo", str(pdf))
    width = float(re.search(r"Page size:\s+([\d.]+) x", info).group(1))
    assert abs(width - 80 / 25.4 * 72) < 1  # 80 mm wide
    assert "Pages:           1" in info
    assert decode_qr(pdf, tmp_path) == f"{PUBLIC}/t/{case.tracking_token}"


# --- who may open it --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["receipt/", "receipt.pdf"])
def test_clerk_of_another_township_gets_404(
    client, tree, people, suffix, django_capture_on_commit_callbacks
):
    case = register(tree, people, django_capture_on_commit_callbacks)
    client.force_login(people.bob)
    assert client.get(f"/intake/cases/{case.code}/{suffix}").status_code == 404
    missing = client.get(f"/intake/cases/13990120260101999999/{suffix}")
    assert missing.status_code == 404


@pytest.mark.parametrize("suffix", ["receipt/", "receipt.pdf"])
def test_anonymous_is_sent_to_login(
    client, tree, people, suffix, django_capture_on_commit_callbacks
):
    case = register(tree, people, django_capture_on_commit_callbacks)
    response = client.get(f"/intake/cases/{case.code}/{suffix}")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("suffix", ["receipt/", "receipt.pdf"])
def test_only_the_counter_that_took_the_case_in_gets_the_receipt(
    client, tree, people, suffix, django_capture_on_commit_callbacks
):
    """The receipt's QR is the resident's credential: staff who see the case never get it."""
    case = register(tree, people, django_capture_on_commit_callbacks)
    handler = f.user("police_handler", role=Role.HANDLER, unit=tree.police_a)
    services.dispatch_case(case=case, actor=people.erin, unit=tree.police_a, profile=f.profile())
    second_clerk = f.user("alice2", role=Role.CLERK, region=tree.town_a)
    for user in (people.dave, people.erin, handler):
        client.force_login(user)
        assert client.get(f"/cases/{case.code}/").status_code == 200  # they see the case
        page = client.get(f"/cases/{case.code}/").content.decode()
        assert case.tracking_token not in page
        assert client.get(f"/intake/cases/{case.code}/{suffix}").status_code == 404, user
    for user in (people.alice, second_clerk):
        client.force_login(user)
        assert client.get(f"/intake/cases/{case.code}/{suffix}").status_code == 200


def test_the_counter_keeps_the_receipt_after_escalation(
    client, tree, people, django_capture_on_commit_callbacks
):
    case = register(tree, people, django_capture_on_commit_callbacks)
    services.escalate_case(case=case, actor=people.erin, reason="涉及多个乡镇")
    client.force_login(people.alice)
    assert client.get(f"/intake/cases/{case.code}/receipt/").status_code == 200
    client.force_login(people.dave)  # the county now holds it, but took nothing in
    assert client.get(f"/intake/cases/{case.code}/receipt/").status_code == 404


# --- fonts ------------------------------------------------------------------------------------


def test_prepare_fonts_second_run_is_a_no_op(capsys):
    call_command("prepare_fonts")
    assert "已是最新" in capsys.readouterr().out


def test_prepared_fonts_cover_gb2312_and_the_rare_name_characters():
    """The slices are disjoint, the first holds the common hanzi, and together they have
    GB 2312 and the rare name characters, in regular; the first two slices also in bold."""
    from fontTools.ttLib import TTFont

    faces = fonts.prepared_fonts()
    regular = {
        face.family: set(TTFont(str(face.path), lazy=True).getBestCmap())
        for face in faces
        if face.weight == 400
    }
    bold = {face.family for face in faces if face.weight == 700}
    families = list(regular)
    assert families[0] == "ZZ Receipt Sans 01" and set(families[:2]) == bold
    assert fonts.gb2312_level1() <= regular[families[0]]
    assert {ord(c) for c in "受理回执案件编号申请人诉求类别"} <= regular[families[0]]
    everything = set().union(*regular.values())
    assert sum(map(len, regular.values())) == len(everything)  # disjoint
    assert fonts.gb2312_chars() <= everything
    for char in RARE:
        assert ord(char) in everything and ord(char) not in regular[families[0]], char
    rules, family_list = fonts.font_face_css()
    assert family_list.startswith('"ZZ Receipt Sans 01", "ZZ Receipt Sans 02", ')
    assert family_list.endswith('"Noto Sans CJK SC", sans-serif')
    assert rules.count("@font-face") == len(faces)


def test_missing_prepared_fonts_fall_back_to_the_system_font(
    settings, tmp_path, fresh_pdf_environment, caplog
):
    settings.RECEIPT_FONT_DIR = tmp_path / "none"
    rules, families = fonts.font_face_css()
    assert rules == "" and families.startswith('"Noto Sans CJK SC"')
    assert "prepare_fonts" in caplog.text
    pdf = tmp_path / "fallback.pdf"
    pdf.write_bytes(receipt.html_to_pdf(f"<p>受理 {RARE}</p>"))
    assert RARE in run("pdftotext", "-enc", "UTF-8", str(pdf), "-")


def test_no_cjk_font_at_all_is_a_clear_error(
    settings, tmp_path, monkeypatch, fresh_pdf_environment
):
    settings.RECEIPT_FONT_DIR = tmp_path / "none"
    monkeypatch.setattr(fonts, "find_source", lambda weight: None)
    with pytest.raises(fonts.ReceiptFontError, match="prepare_fonts"):
        receipt.html_to_pdf("<p>受理</p>")


def test_tools_exist():
    """The checks above shell out to poppler and zbar; say so plainly if they are missing."""
    for tool in ("pdffonts", "pdftotext", "pdftoppm", "pdfinfo", "zbarimg"):
        assert shutil.which(tool), f"{tool} missing: apt-get install poppler-utils zbar-tools"
