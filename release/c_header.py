"""Reads include/wasm_image.h into declarations with their doc comments.

The C compiler's own preprocessor resolves the header's C/C++ conditionals (the C view
is what the ABI is: `typedef uint32_t` for the enums) and keeps the comments (`-C`); the
standard headers are replaced by empty ones so only our declarations remain. What is
left is cbindgen's regular output, which this module splits into macros, enums, opaque
handles, structs, callbacks and functions. A declaration of any other shape is an error,
so a change in the generator's output cannot slip past the ABI check unread.

Used by release/abi.py (the ABI check) and release/api_docs.py (the C reference).
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import tempfile
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


class HeaderError(Exception):
    """The header has a declaration this reader does not know."""


@dataclasses.dataclass
class Member:
    name: str
    text: str  # "const char *digest" for a field, "= 3" for an enum value
    doc: str


@dataclasses.dataclass
class Decl:
    kind: str  # macro, enum, opaque, struct, callback, function
    name: str
    doc: str
    text: str  # the declaration, whitespace normalised, parameter names kept
    abi: str = ""  # what the ABI depends on: types only, no parameter names
    members: list[Member] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Header:
    overview: str
    decls: list[Decl]

    def of_kind(self, kind: str) -> list[Decl]:
        return [d for d in self.decls if d.kind == kind]


def clean_doc(comment: str) -> str:
    """The text of a /** … */ or /* … */ comment, without the stars."""
    body = re.sub(r"^/\*+|\*+/$", "", comment.strip())
    lines = [re.sub(r"^\s*\* ?", "", line) for line in body.splitlines()]
    return "\n".join(lines).strip()


def canonical_type(tokens: list[str]) -> str:
    text = " ".join(tokens)
    return re.sub(r"\*\s+(?=\*)", "*", text)


def split_param(param: str) -> tuple[str, str]:
    """("const char *", "location") from "const char *location"; ("void", "") from "void"."""
    tokens = re.findall(IDENT + r"|\*|\[\]|\S", param)
    if len(tokens) > 1 and re.fullmatch(IDENT, tokens[-1]):
        return canonical_type(tokens[:-1]), tokens[-1]
    return canonical_type(tokens), ""


def split_top(text: str, sep: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def preprocess(header: Path) -> str:
    """The header as a C99 compiler sees it, comments and #defines kept."""
    cc = os.environ.get("CC", "cc")
    with tempfile.TemporaryDirectory() as stubs:
        for name in ("stdbool.h", "stddef.h", "stdint.h"):
            Path(stubs, name).write_text("")
        result = subprocess.run(
            [cc, "-std=c99", "-E", "-P", "-C", "-dD", "-undef", "-nostdinc", "-I", stubs, str(header)],
            capture_output=True,
            text=True,
        )
    if result.returncode != 0:
        raise HeaderError(f"{cc} -E {header} failed:\n{result.stderr}")
    return result.stdout


def _members(body: str, separator: str) -> list[tuple[str, str]]:
    """(doc, code) pairs of an enum's or a struct's body."""
    out, doc = [], ""
    for token in re.finditer(r"/\*.*?\*/|//[^\n]*|[^/]+|/", body, re.S):
        piece = token.group(0)
        if piece.startswith("/**"):
            doc = clean_doc(piece)
        elif piece.startswith("/*") or piece.startswith("//"):
            continue
        else:
            for code in piece.split(separator):
                code = " ".join(code.split())
                if code:
                    out.append((doc, code))
                    doc = ""
    return out


def _declaration(doc: str, raw: str, enums: set[str]) -> Decl:
    # Bodies are read from the raw text (their doc comments span lines); the rest of a
    # declaration is matched with its whitespace normalised.
    code = " ".join(raw.split())
    if m := re.fullmatch(rf"\s*enum\s+({IDENT})\s*\{{(.*)\}}\s*", raw, re.S):
        name, body = m.groups()
        members = []
        for member_doc, member in _members(m.group(2), ","):
            mm = re.fullmatch(rf"({IDENT}) = (-?\d+)", member)
            if not mm:
                raise HeaderError(f"enum {name}: cannot read the value {member!r}")
            members.append(Member(mm.group(1), f"= {mm.group(2)}", member_doc))
        enums.add(name)
        return Decl("enum", name, doc, f"enum {name}", members=members)
    if m := re.fullmatch(rf"typedef (enum {IDENT}|uint\d+_t|int\d+_t) ({IDENT})", code):
        if m.group(2) not in enums:
            raise HeaderError(f"a typedef of an integer that is not an enum: {code!r}")
        return Decl("enum-type", m.group(2), doc, code, abi=m.group(1))
    if m := re.fullmatch(rf"typedef struct ({IDENT}) ({IDENT})", code):
        if m.group(1) != m.group(2):
            raise HeaderError(f"an opaque type named twice: {code!r}")
        return Decl("opaque", m.group(1), doc, code, abi="opaque")
    if m := re.fullmatch(rf"\s*typedef\s+struct\s*\{{(.*)\}}\s*({IDENT})\s*", raw, re.S):
        name = m.group(2)
        members, abi = [], []
        for member_doc, field in _members(m.group(1), ";"):
            ftype, fname = split_param(field)
            if not fname:
                raise HeaderError(f"struct {name}: a field without a name: {field!r}")
            members.append(Member(fname, field, member_doc))
            abi.append(f"{ftype} {fname}")
        return Decl("struct", name, doc, f"typedef struct {{ … }} {name}", abi="; ".join(abi), members=members)
    if m := re.fullmatch(rf"typedef (.+?) \(\*({IDENT})\)\((.*)\)", code):
        ret, name, params = m.groups()
        types = [split_param(p)[0] for p in split_top(params, ",")]
        return Decl("callback", name, doc, code, abi=f"{split_param(ret + ' x')[0]} (*)({', '.join(types)})")
    if m := re.fullmatch(rf"(.+?[\s*])({IDENT})\((.*)\)", code):
        ret, name, params = m.groups()
        types = [split_param(p)[0] for p in split_top(params, ",")]
        ret_type = split_param(ret.strip() + " x")[0]
        return Decl("function", name, doc, code, abi=f"{ret_type} ({', '.join(types)})")
    raise HeaderError(f"a declaration of unknown shape: {code!r}")


def parse(header: Path, guard: str = "WASM_IMAGE_H", prefix: str = "WASM_IMAGE_") -> Header:
    text = preprocess(header)
    decls: list[Decl] = []
    overview = ""
    # #define lines first: they stand alone, one per line.
    code_lines = []
    for line in text.splitlines():
        if m := re.match(rf"\s*#\s*define ({IDENT})\s+(.*)", line):
            # Only the header's own macros: not the compiler's __STDC__ and friends.
            if m.group(1).startswith(prefix) and m.group(1) != guard:
                decls.append(Decl("macro", m.group(1), "", f"#define {m.group(1)} {m.group(2).strip()}"))
        elif re.match(r"\s*#", line):
            if not re.match(r"\s*#\s*(undef|pragma)\b", line):
                raise HeaderError(f"preprocessor line left after preprocessing: {line!r}")
        else:
            code_lines.append(line)
    text = "\n".join(code_lines)
    enums: set[str] = set()
    doc, code, depth = "", "", 0
    for token in re.finditer(r"/\*.*?\*/|//[^\n]*|[{};]|[^/{};]+|/", text, re.S):
        piece = token.group(0)
        if depth > 0:
            code += piece
            depth += piece == "{"
            depth -= piece == "}"
            continue
        if piece.startswith("/*"):
            if not overview and not code.strip() and not any(d.kind != "macro" for d in decls):
                overview = clean_doc(piece)
            elif piece.startswith("/**"):
                doc = clean_doc(piece)
            continue
        if piece.startswith("//"):
            continue
        if piece == "{":
            depth = 1
            code += piece
        elif piece == ";":
            decls.append(_declaration(doc, code, enums))
            doc, code = "", ""
        else:
            code += piece
    if code.strip():
        raise HeaderError(f"text after the last declaration: {code.strip()!r}")
    # An enum's size in C is its typedef's (cbindgen gives C a fixed-width integer).
    c_types = {d.name: d.abi for d in decls if d.kind == "enum-type"}
    for d in decls:
        if d.kind == "enum":
            if d.name not in c_types:
                raise HeaderError(f"enum {d.name} has no typedef giving its C type")
            d.abi = c_types[d.name]
    return Header(overview, [d for d in decls if d.kind != "enum-type"])
