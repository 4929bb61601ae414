"""The receipt's CJK fonts: prepared once, sliced small so that each PDF embeds subsets fast.

WeasyPrint subsets every embedded font per document, and both the time and the PDF size grow
with the font (HarfBuzz keeps glyph ids, so a subset carries an empty slot for every glyph
before the last one used). With the system Noto Sans CJK collection (19 MB, 65,535 glyphs,
seven faces in one file) a receipt costs 100-200 ms and 250 KB with HarfBuzz-subset, and about
15 s with WeasyPrint's fontTools fallback (used when libharfbuzz-subset is missing).

``manage.py prepare_fonts`` therefore cuts the Simplified Chinese face out of the collection,
once, into slices ordered by how often a receipt needs them, the way web fonts are sliced:

- slice 01, regular and bold: ASCII, Latin-1, punctuation, full-width forms and the 3,755
  level-1 hanzi of GB 2312 (the common ones): nearly every receipt uses only this slice;
- slice 02, regular and bold: the rest of GB 2312 (3,008 level-2 hanzi, symbols, kana, Greek);
- slices 03 onwards, regular: every other character the face has, 3,000 per slice in code
  point order (the rest of the basic block, Ext A, then Ext B-G such as 𠮷 U+20BB7), so a name
  with 堃, 喆 or 燊 costs one small slice more.

The stylesheet lists the slices in order and the system Noto family after them, so a character
no slice has still comes out of the system font: never tofu.

If the prepared fonts are missing the renderer falls back to the system Noto fonts with a
warning (correct, but slower and larger); if no CJK font exists at all it raises
``ReceiptFontError`` naming the command to run.
"""

from __future__ import annotations

import ctypes.util
import json
import logging
import os
import shutil
import subprocess  # noqa: S404 - fc-match with fixed arguments, to find the system font
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

SOURCE_FAMILY = "Noto Sans CJK SC"
FAMILY_PREFIX = "ZZ Receipt Sans"
# Bump when the character sets or the recipe change: prepare_fonts rebuilds on a new recipe.
RECIPE = "3"
EXT_SLICE = 3000

# Where distributions put Noto Sans CJK (Debian/Ubuntu fonts-noto-cjk, Fedora, Arch, Alpine).
_SOURCE_DIRS = (
    "/usr/share/fonts/opentype/noto",
    "/usr/share/fonts/google-noto-cjk",
    "/usr/share/fonts/noto-cjk",
    "/usr/share/fonts/noto",
    "/usr/local/share/fonts",
)
_SOURCE_FILES = {"regular": "NotoSansCJK-Regular.ttc", "bold": "NotoSansCJK-Bold.ttc"}
_WEIGHTS = {"regular": 400, "bold": 700}


class ReceiptFontError(RuntimeError):
    """No usable CJK font: the message says what to install or run."""


@dataclass(frozen=True)
class PreparedFace:
    family: str
    weight: int
    path: Path


# Code point ranges every receipt may use besides GB 2312: ASCII, Latin-1, general
# punctuation, letter-like symbols and number forms, arrows, enclosed numbers (①), box and
# geometric shapes (■ □ ○), CJK punctuation, full-width forms.
_CORE_RANGES = (
    (0x0020, 0x007E),
    (0x00A0, 0x00FF),
    (0x2010, 0x206F),
    (0x2100, 0x218F),
    (0x2190, 0x21FF),
    (0x2460, 0x24FF),
    (0x2500, 0x257F),
    (0x25A0, 0x25FF),
    (0x2600, 0x26FF),
    (0x3000, 0x303F),
    (0xFF00, 0xFFEF),
)


def font_dir() -> Path:
    return Path(getattr(settings, "RECEIPT_FONT_DIR", settings.VAR_DIR / "fonts"))


def _gb2312_rows(first: int, last: int) -> set[int]:
    out: set[int] = set()
    for lead in range(first, last + 1):
        for trail in range(0xA1, 0xFF):
            try:
                out.add(ord(bytes((lead, trail)).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return out


def gb2312_chars() -> set[int]:
    """Every character of GB 2312 (6,763 hanzi plus its symbols, kana, Greek, Cyrillic)."""
    return _gb2312_rows(0xA1, 0xF7)


def gb2312_level1() -> set[int]:
    """The 3,755 level-1 hanzi (rows 16-55): the common characters."""
    return _gb2312_rows(0xB0, 0xD7)


def slices(available: set[int]) -> list[tuple[str, tuple[str, ...], set[int]]]:
    """``(family, weights, characters)`` per slice, most used first; see the module docstring."""
    basic = set(range(0x20, 0x7F)) | set(range(0x3000, 0x3040)) | set(range(0xFF00, 0xFFF0))
    first = (gb2312_level1() | basic) & available
    second = gb2312_chars() & available
    for start, end in _CORE_RANGES:
        second.update(range(start, end + 1))
    second = (second & available) - first
    rest = sorted(available - first - second)
    out: list[tuple[str, tuple[str, ...], set[int]]] = [
        (f"{FAMILY_PREFIX} 01", ("regular", "bold"), first),
        (f"{FAMILY_PREFIX} 02", ("regular", "bold"), second),
    ]
    for number, start in enumerate(range(0, len(rest), EXT_SLICE), start=3):
        out.append(
            (f"{FAMILY_PREFIX} {number:02d}", ("regular",), set(rest[start : start + EXT_SLICE]))
        )
    return out


# --- finding the system font ---------------------------------------------------------------


def find_source(weight: str) -> Path | None:
    """The system's Noto Sans CJK collection for ``weight`` ("regular" or "bold"), if any."""
    override = os.environ.get(f"RECEIPT_FONT_SOURCE_{weight.upper()}")
    if override:
        return Path(override) if Path(override).is_file() else None
    for directory in _SOURCE_DIRS:
        candidate = Path(directory) / _SOURCE_FILES[weight]
        if candidate.is_file():
            return candidate
    fc_match = shutil.which("fc-match")
    if fc_match:
        style = "Bold" if weight == "bold" else "Regular"
        try:
            found = subprocess.run(  # noqa: S603 - fixed program and arguments
                [fc_match, "-f", "%{file}", f"{SOURCE_FAMILY}:style={style}"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
        if found and Path(found).is_file() and "CJK" in Path(found).name:
            return Path(found)
    return None


def face_index(path: Path, family: str = SOURCE_FAMILY) -> int:
    """The index of ``family`` in a collection (0 for a single font)."""
    from fontTools.ttLib import TTCollection

    if path.suffix.lower() not in (".ttc", ".otc"):
        return 0
    collection = TTCollection(str(path), lazy=True)
    for index, font in enumerate(collection.fonts):
        if font["name"].getDebugName(1) == family:
            return index
    raise ReceiptFontError(f"{path} does not contain the face {family!r}")


# --- preparing ------------------------------------------------------------------------------


def manifest_path() -> Path:
    return font_dir() / "manifest.json"


def _fingerprint(sources: dict[str, Path]) -> dict:
    return {
        "recipe": RECIPE,
        "sources": {
            weight: {
                "path": str(path),
                "size": path.stat().st_size,
                "mtime": int(path.stat().st_mtime),
            }
            for weight, path in sorted(sources.items())
        },
    }


def prepared_fonts() -> list[PreparedFace] | None:
    """The prepared faces in fallback order, or ``None`` if they are missing or incomplete."""
    try:
        manifest = json.loads(manifest_path().read_text())
        faces = [
            PreparedFace(face["family"], face["weight"], font_dir() / face["file"])
            for face in manifest["faces"]
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if faces and all(face.path.is_file() for face in faces):
        return faces
    return None


def prepare(*, force: bool = False, log=None) -> dict:
    """Build the prepared fonts under ``font_dir()``; skip if the manifest is current.

    Returns a summary dict (``skipped``, ``engine``, ``seconds``, ``faces``). Each file is
    written under a temporary name and renamed, and the manifest last, so a web process never
    loads a half-written font.
    """
    log = log or (lambda message: None)
    sources: dict[str, Path] = {}
    for weight in _SOURCE_FILES:
        path = find_source(weight)
        if path is None:
            raise ReceiptFontError(
                f"未找到系统字体 {_SOURCE_FILES[weight]}（{SOURCE_FAMILY}）。"
                "请安装 fonts-noto-cjk，或用环境变量 "
                f"RECEIPT_FONT_SOURCE_{weight.upper()} 指定字体文件。"
            )
        sources[weight] = path
    fingerprint = _fingerprint(sources)
    directory = font_dir()
    if not force and prepared_fonts() is not None:
        current = json.loads(manifest_path().read_text())
        if current.get("fingerprint") == fingerprint:
            return {"skipped": True, **current}

    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    engine = "harfbuzz" if _harfbuzz() is not None else "fonttools"
    indexes = {weight: face_index(path) for weight, path in sources.items()}
    available = _cmap(sources["regular"], indexes["regular"])
    faces = []
    for family, weights, chars in slices(available):
        for weight in weights:
            name = family.lower().replace(" ", "-") + f"-{weight}.otf"
            log(f"{name}: {len(chars)} 个字符，来自 {sources[weight].name}#{indexes[weight]}")
            data = _subset(sources[weight], indexes[weight], chars)
            _write(directory / name, data)
            faces.append(
                {
                    "family": family,
                    "weight": _WEIGHTS[weight],
                    "file": name,
                    "chars": len(chars),
                    "bytes": len(data),
                }
            )
    summary = {
        "fingerprint": fingerprint,
        "engine": engine,
        "faces": faces,
        "seconds": round(time.perf_counter() - started, 2),
    }
    _write(manifest_path(), json.dumps(summary, ensure_ascii=False, indent=1).encode())
    keep = {face["file"] for face in faces} | {manifest_path().name}
    for old in directory.glob("*.otf"):
        if old.name not in keep:
            old.unlink()
    return {"skipped": False, **summary}


def _write(target: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".tmp", delete=False) as tmp:
        tmp.write(data)
    os.chmod(tmp.name, 0o644)  # the web and worker users both read it
    os.replace(tmp.name, target)


def _cmap(path: Path, index: int) -> set[int]:
    from fontTools.ttLib import TTFont

    font = TTFont(str(path), fontNumber=index, lazy=True)
    return set(font.getBestCmap())


# Tables the receipt never needs: vertical metrics and origins (horizontal text only), and
# GSUB, whose closure would pull in the Japanese, Korean and traditional variants and vertical
# forms (four times the glyphs). GPOS stays for Latin kerning.
_DROP_TABLES = ("GSUB", "vhea", "vmtx", "VORG", "BASE", "DSIG")


def _subset(path: Path, index: int, chars: set[int]) -> bytes:
    hb = _harfbuzz()
    if hb is not None:
        return _subset_harfbuzz(hb, path, index, chars)
    return _subset_fonttools(path, index, chars)


def _subset_fonttools(path: Path, index: int, chars: set[int]) -> bytes:
    """The slow path (about a minute per face) for systems without libharfbuzz-subset."""
    import io

    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.drop_tables += list(_DROP_TABLES)
    options.layout_features = []
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = True
    font = TTFont(str(path), fontNumber=index)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=chars)
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


_HB_CDEF = """
typedef struct hb_blob_t hb_blob_t;
typedef struct hb_face_t hb_face_t;
typedef struct hb_set_t hb_set_t;
typedef struct hb_subset_input_t hb_subset_input_t;
typedef uint32_t hb_codepoint_t;
typedef uint32_t hb_tag_t;
hb_blob_t *hb_blob_create_from_file_or_fail (const char *file_name);
hb_face_t *hb_face_create (hb_blob_t *blob, unsigned int index);
void hb_blob_destroy (hb_blob_t *blob);
void hb_face_destroy (hb_face_t *face);
hb_blob_t *hb_face_reference_blob (hb_face_t *face);
const char *hb_blob_get_data (hb_blob_t *blob, unsigned int *length);
void hb_set_add (hb_set_t *set, hb_codepoint_t codepoint);
hb_tag_t hb_tag_from_string (const char *str, int len);
hb_subset_input_t *hb_subset_input_create_or_fail (void);
void hb_subset_input_destroy (hb_subset_input_t *input);
hb_set_t *hb_subset_input_unicode_set (hb_subset_input_t *input);
hb_set_t *hb_subset_input_set (hb_subset_input_t *input, int set_type);
hb_face_t *hb_subset_or_fail (hb_face_t *source, const hb_subset_input_t *input);
"""
_HB_SETS_DROP_TABLE_TAG = 3
_hb_cache: list = []


def _harfbuzz():
    """``(ffi, libharfbuzz, libharfbuzz-subset)`` or ``None``: subsetting in ~1 s, not minutes."""
    if _hb_cache:
        return _hb_cache[0]
    handle = None
    try:
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(_HB_CDEF)
        names = (
            ctypes.util.find_library("harfbuzz") or "libharfbuzz.so.0",
            ctypes.util.find_library("harfbuzz-subset") or "libharfbuzz-subset.so.0",
        )
        handle = (ffi, ffi.dlopen(names[0]), ffi.dlopen(names[1]))
    except (ImportError, OSError, AttributeError) as exc:
        logger.info("HarfBuzz-subset unavailable (%s); fontTools will subset the fonts", exc)
    _hb_cache.append(handle)
    return handle


def _subset_harfbuzz(hb, path: Path, index: int, chars: set[int]) -> bytes:
    ffi, lib, sub = hb
    blob = lib.hb_blob_create_from_file_or_fail(os.fsencode(path))
    if blob == ffi.NULL:
        raise ReceiptFontError(f"HarfBuzz cannot read {path}")
    face = lib.hb_face_create(blob, index)
    subset_input = sub.hb_subset_input_create_or_fail()
    result = out_blob = ffi.NULL
    try:
        unicodes = sub.hb_subset_input_unicode_set(subset_input)
        for char in sorted(chars):
            lib.hb_set_add(unicodes, char)
        drop = sub.hb_subset_input_set(subset_input, _HB_SETS_DROP_TABLE_TAG)
        for tag in _DROP_TABLES:
            lib.hb_set_add(drop, lib.hb_tag_from_string(tag.encode(), -1))
        result = sub.hb_subset_or_fail(face, subset_input)
        if result == ffi.NULL:
            raise ReceiptFontError(f"HarfBuzz could not subset {path}#{index}")
        out_blob = lib.hb_face_reference_blob(result)
        length = ffi.new("unsigned int *")
        data = lib.hb_blob_get_data(out_blob, length)
        return bytes(ffi.buffer(data, length[0]))
    finally:
        if out_blob != ffi.NULL:
            lib.hb_blob_destroy(out_blob)
        if result != ffi.NULL:
            lib.hb_face_destroy(result)
        sub.hb_subset_input_destroy(subset_input)
        lib.hb_face_destroy(face)
        lib.hb_blob_destroy(blob)


# --- using ----------------------------------------------------------------------------------


def font_face_css(faces: list[PreparedFace] | None = None) -> tuple[str, str]:
    """``(@font-face rules, font-family list)`` for the PDF stylesheet.

    With prepared fonts: the slices in order, then the system family as the last resort;
    without them only the system family (logged as a warning).
    """
    faces = prepared_fonts() if faces is None else faces
    if not faces:
        if find_source("regular") is None:
            raise ReceiptFontError(
                "受理单缺少中文字体：请运行 `python manage.py prepare_fonts`"
                "（需要系统安装 fonts-noto-cjk）。"
            )
        logger.warning(
            "Prepared receipt fonts missing in %s; using the system %s (slower, larger PDFs). "
            "Run `manage.py prepare_fonts`.",
            font_dir(),
            SOURCE_FAMILY,
        )
        return "", f'"{SOURCE_FAMILY}", sans-serif'
    rules = [
        f'@font-face {{ font-family: "{face.family}"; font-weight: {face.weight}; '
        f'font-style: normal; src: url("{face.path.as_uri()}"); }}'
        for face in faces
    ]
    families = list(dict.fromkeys(face.family for face in faces))
    names = ", ".join(f'"{family}"' for family in [*families, SOURCE_FAMILY])
    return "\n".join(rules), f"{names}, sans-serif"
