"""The report page: one self-contained ``index.html`` from a ``metrics.json`` dictionary.

The first screen answers "is it good enough?": the verdict against the user's thresholds, the
headline metrics, and the key physics plots (response and resolution per incident energy, mean
longitudinal and radial profiles, voxel spectrum, classifier score histograms). The per-layer
detail (separation-power tables, one histogram per feature and layer, the average shower per
layer, the protocol) follows in collapsible ``<details>`` sections. CSS is inline and figures
are base64 PNG data URIs, so the file opens anywhere with no server. Nothing here imports
matplotlib.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from caloforge.evaluate.histograms import split_name

#: features whose reference histogram has fewer entries in range are left out of the summary
MIN_REFERENCE_ENTRIES = 50
#: the feature groups in report order
GROUPS = (
    "response", "response_E", "E_tot", "voxel_energy", "E_layer", "sparsity", "EC_eta", "EC_phi",
    "width_eta", "width_phi", "EC_r", "width_r",
)  # fmt: skip
#: the verdict's words and colours
STATUS = {
    "pass": ("PASS", "every threshold is met", "#1e8449"),
    "fail": ("FAIL", "at least one threshold is not met", "#b03a2e"),
    "incomplete": (
        "INCOMPLETE",
        "no threshold failed, but some metric was not computed",
        "#b9770e",
    ),
    "none": ("NO THRESHOLDS SET", "nothing to pass or fail", "#566573"),
}

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:16px auto;max-width:1200px;
color:#222;padding:0 16px}
h1{font-size:1.5em;margin:0 0 4px 0} h2{margin-top:24px;border-bottom:1px solid #ddd;font-size:1.2em}
.sub{color:#666;margin-top:0;font-size:0.9em}
table{border-collapse:collapse;margin:8px 0 12px 0;font-size:0.9em}
th,td{border:1px solid #ddd;padding:3px 9px;text-align:right} th{background:#f3f5f8}
td.k,th.k{text-align:left}
.top{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.top .col{flex:1 1 420px} .top h2{margin-top:4px}
.verdict{display:flex;gap:14px;align-items:flex-start;margin:10px 0}
.badge{color:#fff;font-weight:700;font-size:1.3em;padding:10px 18px;border-radius:6px;
white-space:nowrap}
.grid{display:flex;flex-wrap:wrap;gap:8px}
.grid figure{margin:0;border:1px solid #eee;padding:4px}
.grid img{width:280px;display:block} .key img{width:280px} .wide img{width:100%;max-width:1100px}
figcaption{font-size:0.8em;color:#555;text-align:center}
.notes li{margin:2px 0;font-size:0.9em} .bad{color:#b03a2e;font-weight:600} .good{color:#1e8449}
.miss{color:#b9770e;font-weight:600}
details{margin:6px 0;border:1px solid #e3e6ea;border-radius:4px;padding:4px 10px}
summary{cursor:pointer;font-weight:600;padding:3px 0}
"""


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return html.escape(str(value))


def _img(out_dir: Path, rel: str) -> str:
    data = base64.b64encode((out_dir / rel).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def summary_rows(m: dict) -> list[tuple[str, str, str]]:
    """(metric, value, how to read it) rows of the headline table."""
    rows = []
    for mode, c in m.get("classifier", {}).items():
        rows.append((
            f"classifier AUC ({mode})",
            f"{_fmt(c['auc'])} ± {_fmt(c['auc_null_sigma'])}",
            "0.5 = indistinguishable; ± is the spread for a perfect generator",
        ))  # fmt: skip
        rows.append(
            (f"classifier JSD ({mode})", _fmt(c["jsd"]), "0 = indistinguishable, 1 = separable")
        )
    for key in ("fpd", "kpd"):
        if key in m:
            rows.append((
                key.upper(), f"{_fmt(m[key]['value'])} ± {_fmt(m[key]['error'])}",
                "0 = same high-level feature distributions",
            ))  # fmt: skip
    for name, r in m.get("metrics", {}).items():  # caloforge.evaluate.registry
        rows.append((name, f"{_fmt(r['value'])} ± {_fmt(r['error'])}", r.get("note") or ""))
    if "prdc" in m:
        p = m["prdc"]
        rows.append((
            f"precision / recall (k={p['nearest_k']})",
            f"{_fmt(p['precision'])} / {_fmt(p['recall'])}",
            "1 / 1 for a perfect generator (official prdc mode)",
        ))  # fmt: skip
        rows.append((
            "density / coverage", f"{_fmt(p['density'])} / {_fmt(p['coverage'])}",
            "about 1 / 1 for a perfect generator",
        ))  # fmt: skip
    summary = m.get("separation_power_summary", {})
    if "all" in summary:
        s = summary["all"]
        rows.append((
            "separation power, mean of all", _fmt(s["mean"]),
            f"0 = identical histograms, 1 = disjoint; worst {_fmt(s.get('max'))} of {s.get('n')}",
        ))  # fmt: skip
    resp_s = m.get("separation_power", {}).get("response")
    if resp_s is not None:
        rows.append(("separation power, E_tot/E_inc", _fmt(resp_s), "the response histogram"))
    resp = m.get("response", {})
    if resp:
        rows.append((
            "response E_tot/E_inc (mean ± std)",
            f"{resp['generated']['mean']:.4f} ± {resp['generated']['std']:.4f}",
            f"reference {resp['reference']['mean']:.4f} ± {resp['reference']['std']:.4f}",
        ))  # fmt: skip
    return rows


def _verdict_html(m: dict) -> list[str]:
    e = html.escape
    v = m.get("verdict") or {"status": "none", "checks": []}
    word, meaning, colour = STATUS[v["status"]]
    parts = [
        "<div class='verdict'>",
        f"<div class='badge' id='verdict' style='background:{colour}'>{word}</div><div>",
    ]
    if v["checks"]:
        parts.append(
            f"<div>{e(meaning)}.</div><table><tr><th class='k'>threshold</th><th>value</th>"
            "<th class='k'>result</th></tr>"
        )
        for c in v["checks"]:
            result = {
                True: "<span class='good'>pass</span>",
                False: "<span class='bad'>fail</span>",
                None: "<span class='miss'>not computed</span>",
            }[c["passed"]]
            parts.append(
                f"<tr><td class='k'><code>{e(c['metric'])} {e(c['op'])} {c['limit']:g}</code></td>"
                f"<td>{_fmt(c['value'])}</td><td class='k'>{result}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append(
            "<div>No thresholds were set: pass them with <code>caloforge evaluate … --pass "
            "'cls-high.auc&lt;0.6,fpd&lt;0.05'</code> or <code>--pass-file limits.json</code>. "
            "Published CaloChallenge values are not built in, so compare the table below with "
            "the published tables yourself (same protocol and binning).</div>"
        )
    for mode, c in m.get("classifier", {}).items():
        sigma = c.get("auc_null_sigma")
        if c.get("auc") is not None and sigma:
            dev = (c["auc"] - 0.5) / sigma
            parts.append(
                f"<div class='sub'>AUC ({e(mode)}) lies {dev:+.1f} σ from 0.5 (σ = {sigma:.4f}, the "
                "spread for a perfect generator at this sample size).</div>"
            )
    parts.append("</div></div>")
    return parts


def _layer_table(m: dict) -> list[str]:
    e = html.escape
    extra = m.get("separation_power_extra", {})
    seps = {**m.get("separation_power", {}), **extra}
    entries = m.get("separation_power_entries", {})
    low_stats = {k for k, (n_ref, _) in entries.items() if n_ref < MIN_REFERENCE_ENTRIES}
    names = {k: split_name(k) for k in seps}
    layer_groups = [
        g for g in GROUPS if any(n == (g, n[1]) and n[1] is not None for n in names.values())
    ]
    layers = sorted({lid for _, lid in names.values() if lid is not None})
    parts: list[str] = []
    if layers:
        parts.append("<table><tr><th class='k'>layer</th>")
        parts += [f"<th>{e(g)}</th>" for g in layer_groups]
        parts.append("</tr>")
        for lid in layers:
            parts.append(f"<tr><td class='k'>{lid}</td>")
            for g in layer_groups:
                name = f"{g}_{lid}"
                star = ("*" if name in low_stats else "") + ("†" if name in extra else "")
                parts.append(f"<td>{_fmt(seps.get(name))}{star}</td>")
            parts.append("</tr>")
        parts.append("</table>")
    binning = m.get("binning", {})
    per_shower = [k for k, (_, lid) in names.items() if lid is None]
    if per_shower:
        parts.append(
            "<table><tr><th class='k'>feature</th><th>separation power</th>"
            "<th class='k'>bins</th></tr>"
        )
        for k in per_shower:
            b = binning.get(k, {})
            bins = (
                f"{b.get('n_bins')} {'log ' if b.get('log') else ''}bins on "
                f"[{_fmt(b.get('low'))}, {_fmt(b.get('high'))}]"
                if b
                else ""
            )
            star = ("*" if k in low_stats else "") + ("†" if k in extra else "")
            parts.append(
                f"<tr><td class='k'>{e(k)}</td><td>{_fmt(seps[k])}{star}</td>"
                f"<td class='k'>{e(bins)}</td></tr>"
            )
        parts.append("</table>")
    if extra:
        parts.append(
            "<p class='sub'>† caloforge extra, not one of the official separation powers.</p>"
        )
    if low_stats & set(seps):
        parts.append(
            f"<p class='sub'>* fewer than {MIN_REFERENCE_ENTRIES} reference entries in the "
            "bins: not used in the summary.</p>"
        )
    return parts


def _grid(out: Path, figs: list[dict], cls: str = "") -> str:
    e = html.escape
    items = "".join(
        f"<figure><img alt='{e(f['title'])}' src='{_img(out, f['path'])}'>"
        f"<figcaption>{e(f['title'])}</figcaption></figure>"
        for f in figs
    )
    return f"<div class='grid {cls}'>{items}</div>"


def render_html(metrics: dict, out_dir: str | os.PathLike) -> str:
    """The self-contained report page (see the module docstring) for ``metrics`` whose figure
    paths are relative to ``out_dir``."""
    m, out = metrics, Path(out_dir)
    e = html.escape
    proto = m["protocol"]
    figures = m.get("figures", [])
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>caloforge evaluation: {e(m['generated'])}</title><style>{_CSS}</style></head>",
        "<body><h1>caloforge evaluation report</h1>",
        f"<p class='sub'>{e(m['labels'][1])}: <code>{e(m['generated'])}</code> "
        f"({m['n_generated']} showers) against {e(m['labels'][0])}: "
        f"<code>{e(m['reference'])}</code> ({m['n_reference']} showers) · geometry "
        f"<b>{e(m['geometry'])}</b> · voxel threshold {m['threshold_mev']:g} MeV · protocol "
        f"<b>{e(proto['name'])}</b> · binning <b>{e(m.get('binning_scheme', ''))}</b> · "
        f"seed {m['seed']} · caloforge {e(m['caloforge_version'])}</p>",
        "<div class='top'><div class='col'>",
        *_verdict_html(m),
        "</div><div class='col'><h2>Metrics</h2><table><tr><th class='k'>metric</th>"
        "<th>value</th><th class='k'>how to read it</th></tr>",
    ]
    for name, value, how in summary_rows(m):
        parts.append(
            f"<tr><td class='k'>{e(name)}</td><td>{value}</td><td class='k'>{e(how)}</td></tr>"
        )
    parts.append("</table></div></div>")
    timing = m.get("timing")
    if timing:
        parts.append(
            f"<p class='sub'>Generation time: {timing['seconds_per_shower']:.3g} s per shower "
            f"({e(str(timing.get('source', '')))}).</p>"
        )
    key = [f for f in figures if f["group"] in ("key", "response_vs_e_inc")]
    if key:
        parts += ["<h2>Key physics plots</h2>", _grid(out, key, "key")]
    elif not figures:
        parts.append("<p class='sub'>No figures were drawn (plots off).</p>")
    if m.get("notes"):
        parts.append(
            "<h2>Notes</h2><ul class='notes'>"
            + "".join(f"<li>{e(n)}</li>" for n in m["notes"])
            + "</ul>"
        )
    # ---- the detail, collapsed
    parts.append("<h2>Detail</h2>")
    if m.get("summary_only"):
        parts.append(
            "<p class='sub'>Summary mode: the per-layer figures were not drawn (run "
            "<code>caloforge evaluate</code> without <code>--summary</code> for them); the "
            "tables below hold every number.</p>"
        )
    table = _layer_table(m)
    if table:
        parts += [
            "<details id='separation-power'><summary>Separation power per layer and feature"
            "</summary>", *table, "</details>",
        ]  # fmt: skip
    summary = m.get("separation_power_summary", {})
    titles = {"image": "Average shower per layer"}
    for group in (*GROUPS, "image"):
        figs = [f for f in figures if f["group"] == group]
        if not figs:
            continue
        s = summary.get(group)
        stat = f" · mean S {_fmt(s['mean'])}, worst {_fmt(s['max'])}" if s else ""
        cls = "wide" if group == "image" else ""
        parts.append(
            f"<details id='group-{e(group)}'><summary>{e(titles.get(group, group))} "
            f"({len(figs)} figure{'s' if len(figs) > 1 else ''}{stat})</summary>"
            f"{_grid(out, figs, cls)}</details>"
        )
    parts.append(
        "<details id='protocol'><summary>Protocol settings</summary><p class='sub'>"
        + ", ".join(f"{e(k)}={e(str(v))}" for k, v in proto.items())
        + "</p></details>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)
