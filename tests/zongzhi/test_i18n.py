"""The English interface: switching language turns the pages English, and the catalog is complete.

zh-hans is the default; the msgids are Chinese and ``locale/en`` holds the English. Pages are
checked from the user's side: after the switch, no Chinese is left on the page except the data
itself (names of places, units, people, categories and what the resident wrote).
"""

from __future__ import annotations

import ast
import gettext as gettext_module
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.signals import setting_changed
from django.utils import translation

from dispatch.models import Case, Category
from grids.models import Region, Unit
from people.models import User
from tests.intake import intake_helpers
from tests.intake.intake_helpers import drive_to_archive, register_via_http

pytestmark = pytest.mark.django_db

PO = Path(settings.BASE_DIR) / "locale" / "en" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
IDEOGRAPH = re.compile(r"[\u3400-\u9fff]")


@pytest.fixture(scope="session", autouse=True)
def english_catalog():
    """Compile the English catalog when the .mo is missing or older than the .po."""
    if MO.exists() and MO.stat().st_mtime >= PO.stat().st_mtime:
        return
    call_command(
        "compilemessages",
        locale=["en"],
        ignore_patterns=[".venv", "var", ".git", "node_modules"],
        verbosity=0,
    )
    # A catalog loaded earlier in this process would hide the new file: drop the caches the way
    # Django's own settings override does, and gettext's per-file cache of a stale .mo.
    for key in [k for k in getattr(gettext_module, "_translations", {}) if str(MO) in str(k)]:
        gettext_module._translations.pop(key, None)
    setting_changed.send(
        sender=type(settings), setting="LOCALE_PATHS", value=settings.LOCALE_PATHS, enter=False
    )


def switch_to_english(client, next_url="/"):
    response = client.post("/i18n/setlang/", {"language": "en", "next": next_url})
    assert response.status_code == 302
    assert response["Location"] == next_url


def chinese_left(body: str) -> list[str]:
    """Chinese text on the page that is not data: visible text, titles, labels, placeholders."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    # The language selector names each language in itself.
    body = re.sub(r"<option value=\"zh-hans\"[^>]*>简体中文</option>", " ", body)
    data = [
        *Region.objects.values_list("name", flat=True),
        *Unit.objects.values_list("name", flat=True),
        *User.objects.values_list("full_name", flat=True),
        *(str(c) for c in Category.objects.all()),
        *Category.objects.values_list("name", flat=True),
    ]
    for case in Case.objects.all():
        data += [case.summary, case.narrative, case.address_detail, case.result]
        data += [link.party.masked_name for link in case.case_parties.select_related("party")]
    data += [intake_helpers.NARRATIVE, "已调解，双方达成协议"]
    # Longest first, so that a name is not cut by a shorter name inside it.
    for value in sorted({d for d in data if d}, key=len, reverse=True):
        body = body.replace(value, " ")
    return sorted(set(re.findall(r"[\u3400-\u9fff]+", body)))


def test_login_page_is_chinese_by_default_and_english_after_switching(client):
    response = client.get("/login/")
    body = response.content.decode()
    assert "工作人员登录" in body
    assert '<html lang="zh-hans">' in body

    switch_to_english(client, "/login/")
    body = client.get("/login/").content.decode()
    assert '<html lang="en">' in body
    assert "Staff login" in body
    assert "Username" in body and "Password" in body
    assert "工作人员登录" not in body
    assert chinese_left(body) == []


def test_the_browser_language_does_not_choose_the_interface(client, people):
    """Chinese unless the person chose otherwise: a browser set to English changes nothing."""
    english_browser = {"HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9"}
    assert "工作人员登录" in client.get("/login/", **english_browser).content.decode()
    client.force_login(people.alice)
    assert "窗口受理" in client.get("/intake/", **english_browser).content.decode()
    switch_to_english(client)
    people.alice.refresh_from_db()
    assert people.alice.language == "en"  # kept on the profile
    elsewhere = type(client)()  # another computer, another browser
    elsewhere.force_login(people.alice)
    assert "Counter intake" in elsewhere.get("/intake/").content.decode()


def test_a_failed_login_explains_in_english(client, people):
    switch_to_english(client, "/login/")
    response = client.post("/login/", {"username": "alice", "password": "wrong"})
    assert "Wrong username or password" in response.content.decode()


def test_staff_pages_render_in_english(client, tree, people, cats):
    client.force_login(people.alice)
    switch_to_english(client)
    intake = client.get("/intake/").content.decode()
    assert "Counter intake" in intake
    assert "Find a party (mobile or ID number)" in intake
    assert "Resolved on the spot" in intake
    assert chinese_left(intake) == []

    case = register_via_http(client, tree)
    client.force_login(people.erin)
    # The language is each person's own: another user at the same browser keeps theirs.
    assert "派单工作台" in client.get("/work/dispatcher/").content.decode()
    switch_to_english(client)
    queue = client.get("/work/dispatcher/").content.decode()
    assert "Dispatch desk" in queue
    assert "派单工作台" not in queue
    assert chinese_left(queue) == []

    page = client.get(f"/cases/{case.code}/").content.decode()
    assert "Available actions" in page
    assert "Case registered" in page  # the status, from the state table's labels
    assert chinese_left(page) == []


def test_error_messages_are_english(client, tree, people, cats):
    client.force_login(people.alice)
    case = register_via_http(client, tree)
    client.force_login(people.erin)
    switch_to_english(client)
    url = f"/cases/{case.code}/dispatch/"
    # A form error: neither a time-limit scheme nor a deadline.
    response = client.post(url, {"dispatch-unit": tree.police_a.pk})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Please check your entries: “Dispatch” was not submitted" in body
    assert "Choose a time-limit scheme or enter a completion deadline" in body
    # A service error: the deadline is already past.
    response = client.post(
        url,
        {
            "dispatch-unit": tree.police_a.pk,
            "dispatch-due_at": "2020-01-01T10:00",
            "dispatch-seen": Case.objects.get(pk=case.pk).event_count,
        },
    )
    assert response.status_code == 409
    assert "The completion deadline must be in the future" in response.content.decode()


def test_public_tracking_page_in_both_languages(
    client, tree, people, cats, django_capture_on_commit_callbacks
):
    client.force_login(people.alice)
    case = register_via_http(client, tree)
    client.logout()
    url = f"/t/{case.tracking_token}"

    chinese = client.get(url).content.decode()
    assert "诉求办理进度" in chinese
    assert "第2步，共6步" in chinese

    switch_to_english(client, url)
    english = client.get(url).content.decode()
    assert "Progress of your request" in english
    assert "Step 2 of 6" in english
    assert "Case registered" in english
    assert "诉求办理进度" not in english  # not the Chinese page served from the cache
    assert chinese_left(english) == []

    with django_capture_on_commit_callbacks(execute=True):  # drops the cached page
        drive_to_archive(case, tree, people)
    english = client.get(url).content.decode()
    assert "Please rate our work" in english
    assert "Very satisfied" in english
    assert chinese_left(english) == []

    lookup = client.get("/t/").content.decode()
    assert "Track progress" in lookup
    assert chinese_left(lookup) == []


# --- the catalog itself ----------------------------------------------------------------------


def _unquote(line: str) -> str:
    return ast.literal_eval(line)


def read_po(path: Path) -> list[dict]:
    """Entries of a .po file: msgid, msgid_plural, msgstr (list), flags, obsolete."""
    entries: list[dict] = []
    entry: dict = {}
    field = None

    def finish():
        if "msgid" in entry:
            entries.append(entry.copy())
        entry.clear()

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            finish()
            field = None
            continue
        if line.startswith("#~"):
            entry["obsolete"] = True
            continue
        if line.startswith("#,"):
            if "msgid" in entry:
                finish()
            entry.setdefault("flags", set()).update(f.strip() for f in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            value = _unquote(line)
            if field == "msgstr":
                entry["msgstr"][-1] += value
            else:
                entry[field] += value
            continue
        keyword, _sep, rest = line.partition(" ")
        if keyword == "msgid" and "msgid" in entry and "msgstr" in entry:
            finish()
        if keyword.startswith("msgstr"):
            entry.setdefault("msgstr", []).append(_unquote(rest))
            field = "msgstr"
        else:
            entry[keyword] = _unquote(rest)
            field = keyword
    finish()
    return entries


PLACEHOLDER = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[sdf]|%%|\{\w*\}")


def test_every_message_has_an_english_translation():
    entries = [e for e in read_po(PO) if e["msgid"] and not e.get("obsolete")]
    assert len(entries) > 400  # the whole interface, not a stub
    header = next(e for e in read_po(PO) if e["msgid"] == "")
    assert "fuzzy" not in header.get("flags", set())
    assert "Language: en" in header["msgstr"][0]

    untranslated = [e["msgid"] for e in entries if not all(s.strip() for s in e["msgstr"])]
    assert untranslated == []
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e.get("flags", set())]
    assert fuzzy == []
    still_chinese = [
        e["msgid"]
        for e in entries
        if any(IDEOGRAPH.search(s) for s in e["msgstr"]) and e["msgid"] != "简体中文"
    ]
    assert still_chinese == []
    for e in entries:
        expected = sorted(PLACEHOLDER.findall(e["msgid"]))
        for text in e["msgstr"]:
            assert sorted(PLACEHOLDER.findall(text)) == expected, e["msgid"]


GETTEXT_CALLS = {"_", "_lazy", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy"}
TRANSLATE_TAG = re.compile(r"""\{%\s*(?:translate|trans)\s+(?:"([^"]*)"|'([^']*)')""")
APPS = ["zongzhi", "grids", "people", "dispatch", "intake"]


def strings_in_the_code() -> dict[str, str]:
    """Literal msgids of gettext calls in the apps and of {% translate %} in the templates."""
    base = Path(settings.BASE_DIR)
    found: dict[str, str] = {}
    for app in APPS:
        for path in sorted((base / app).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and node.args):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                arg = node.args[0]
                if name in GETTEXT_CALLS and isinstance(arg, ast.Constant):
                    found.setdefault(arg.value, f"{path.relative_to(base)}:{node.lineno}")
    for folder in [base / "templates", *(base / app / "templates" for app in APPS)]:
        for path in sorted(folder.rglob("*.html")):
            for match in TRANSLATE_TAG.finditer(path.read_text(encoding="utf-8")):
                found.setdefault(match.group(1) or match.group(2), str(path.relative_to(base)))
    return found


def test_the_catalog_has_every_string_of_the_code():
    # A string added without running makemessages (or dropped by it) shows Chinese to an
    # English user; list them with where they are.
    catalog = {e["msgid"] for e in read_po(PO) if not e.get("obsolete")}
    code = strings_in_the_code()
    assert len(code) > 400
    missing = {msgid: where for msgid, where in code.items() if msgid not in catalog}
    assert missing == {}


def test_plural_forms_are_chosen_by_count():
    with translation.override("en"):
        one = translation.ngettext(
            "找到 %(n)s 位当事人，已填入申请人", "找到 %(n)s 位当事人，请核对后选择", 1
        )
        two = translation.ngettext(
            "找到 %(n)s 位当事人，已填入申请人", "找到 %(n)s 位当事人，请核对后选择", 2
        )
    assert one % {"n": 1} == "Found 1 party; filled in as applicant"
    assert two % {"n": 2} == "Found 2 parties; choose the one at the counter"
