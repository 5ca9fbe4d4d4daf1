"""The benchmark's report: tables (Markdown) and plots (matplotlib) from
the records tests/bench.py collected. write(results, out) writes
report.md and the PNGs into out and returns the main table as text."""

import math
import os
import statistics

import diskmodel

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.colors import ListedColormap  # noqa: E402

VARIANT_NAMES = {
    "none": "no defragmentation",
    "e2fsprogs": "e2fsprogs e4defrag (set + big files)",
    "r-module": "e4defrag -r --order (module)",
    "r-move-ext": "e4defrag -r --order (MOVE_EXT)",
    "files-module": "e4defrag big files (module)",
    "files-move-ext": "e4defrag big files (MOVE_EXT)",
    "boot": "recorded read, -r --only-listed / (module)",
    "copy": "a fresh copy (cp -a)",
    "ideal": "ideal: one contiguous file",
}
VARIANTS = list(VARIANT_NAMES)
TREE_VARIANT_NAMES = {
    "aged": "aged: the releases installed over each other",
    "e2fsprogs": "e2fsprogs e4defrag DIR",
    "files-module": "e4defrag MOUNT: every file on its own, as the weekly unit (module)",
    "r-module": "e4defrag -r (module; walk order, the default)",
    "r-module-path": "e4defrag -r --order-by path (module)",
    "r-move-ext": "e4defrag -r (MOVE_EXT; walk order)",
    "copy": "a fresh copy (cp -a)",
    "ideal": "ideal: the tree's data in one file",
}
TREE_VARIANTS = list(TREE_VARIANT_NAMES)
TREE_READS = {"grep": "grep -r", "tar": "tar c", "du": "du -s"}
START_VARIANT_NAMES = {
    "aged": "aged",
    "e2fsprogs": "e2fsprogs e4defrag MOUNT",
    "files-module": "e4defrag MOUNT: each file on its own (module)",
    "r-module": "e4defrag -r MOUNT (module; walk order)",
    "r-module-path": "e4defrag -r --order-by path MOUNT (module)",
    "r-move-ext": "e4defrag -r MOUNT (MOVE_EXT; walk order)",
    "boot-module": "--record, then -r --order LIST --only-listed (module)",
    "boot-move-ext": "--record, then -r --order LIST --only-listed (MOVE_EXT)",
    "copy": "a fresh copy of every directory (cp -a)",
    "ideal": "ideal: the recorded files' data in one file",
}
START_VARIANTS = list(START_VARIANT_NAMES)


def median_run(runs):
    """The run of median model time of RUNS (read records), or None."""
    runs = sorted(runs or [], key=lambda f: float(f["model_read_ms"]))
    return runs[len(runs) // 2] if runs else None


def records_of(tree, read_kind, cost_kind, key):
    """The tree boot's read records of READ_KIND, grouped by KEY(fields),
    and its cost records of COST_KIND by variant."""
    reads, cost = {}, {}
    for kind, f, _ in tree["records"]:
        if kind == read_kind:
            reads.setdefault(key(f), []).append(f)
        elif kind == cost_kind:
            cost[f["variant"]] = f
    return reads, cost


KINDS = (("itable", "inode tables"), ("dir", "directories"),
         ("bitmap", "bitmaps, descriptors"))


def kinds_table(rows):
    """Where the disk's time goes: ROWS of (name, read fields with the
    model's model_* counters), split by what the reads start in (the
    guest's model_map before the reads; the rest is file data, extent
    blocks and the journal)."""
    head = ["variant", "model s"] + [f"{n} s (reads)" for _, n in KINDS] + [
        "data s (reads, seeks)"]
    out = [head, ["---"] * len(head)]
    for name, f in rows:
        if f is None or "model_itable_ms" not in f:
            out.append([name] + ["-"] * (len(head) - 1))
            continue
        total, reads = float(f["model_read_ms"]), int(f["model_reads"])
        row = [name, f"{total / 1000:.2f}"]
        for k, _ in KINDS:
            ms, n = float(f[f"model_{k}_ms"]), int(f[f"model_{k}_reads"])
            total, reads = total - ms, reads - n
            row.append(f"{ms / 1000:.2f} ({n})")
        seeks = f", {f['model_data_seeks']}" if "model_data_seeks" in f else ""
        row.append(f"{total / 1000:.2f} ({reads}{seeks})")
        out.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in out)


def split(f):
    """(data ms, metadata ms, {kind: (ms, reads)}, data reads, data seeks
    or None) of a read record with the model's counters by kind, or
    None."""
    if f is None or "model_itable_ms" not in f:
        return None
    kinds = {k: (float(f[f"model_{k}_ms"]), int(f[f"model_{k}_reads"])) for k, _ in KINDS}
    meta = sum(ms for ms, _ in kinds.values())
    reads = int(f["model_reads"]) - sum(n for _, n in kinds.values())
    seeks = int(f["model_data_seeks"]) if "model_data_seeks" in f else None
    return float(f["model_read_ms"]) - meta, meta, kinds, reads, seeks


def data_words(sp):
    data, _, _, reads, seeks = sp
    return f"{data / 1000:.2f} s data ({reads} reads" + (
        f", {seeks} seeks)" if seeks is not None else ")")


def goal_line(name, got, target, better, f, ref, ref_name):
    """One goal: NAME, the ratio GOT against TARGET ("met" when BETTER),
    and, when missed, where the variant's time F goes next to REF's."""
    if got is None:
        return f"* {name}: not measured"
    line = f"* {name}: {got:.2f}x, goal {target}: " + ("met" if better else "**missed**")
    sf, sr = split(f), split(ref)
    if not better and sf:
        data, meta, kinds = sf[:3]
        parts = ", ".join(f"{n} {kinds[k][0] / 1000:.2f} s ({kinds[k][1]} reads)"
                          for k, n in KINDS)
        line += (f". Of its {(data + meta) / 1000:.2f} s, {meta / 1000:.2f} s are metadata "
                 f"({parts}), {data_words(sf)}")
        if sr:
            line += f"; {ref_name}: {sr[1] / 1000:.2f} s metadata, {data_words(sr)}"
        line += (". Inode tables and directories stay where they are (defragmentation "
                 "moves regular files' data only), and each read of them takes the head "
                 "off the data, whose next read pays the seek back")
    return line + "."


def ratio(a, b):
    """Model time of read record A over B's, or None without both."""
    return float(a["model_read_ms"]) / float(b["model_read_ms"]) if a and b else None


def goals_section(d, tree):
    """Issue 21's goals, as ratios of model time; the benchmark judges
    nothing, it says by how much and where the time goes."""
    lines = []
    r, ideal = median_run(d.model.get(("r-module", "set"))), median_run(d.model.get(("ideal", "set")))
    got = ratio(r, ideal)
    lines.append(goal_line("(a) the set after `-r` (module) against the one-file ideal",
                           got, "<= 1.3x", got is not None and got <= 1.3, r, ideal, "the ideal"))
    if tree:
        reads, _ = records_of(tree, "tread", "tdefrag", lambda f: (f["variant"], f["what"]))
        aged, rm = median_run(reads.get(("aged", "grep"))), median_run(reads.get(("r-module", "grep")))
        copy = median_run(reads.get(("copy", "grep")))
        got = ratio(aged, rm)
        lines.append(goal_line("(b) `grep -r` of the aged tree after plain `-r`, speed-up over "
                               "the aged", got, ">= 3x", got is not None and got >= 3, rm, aged,
                               "aged"))
        got = ratio(copy, rm)
        lines.append(goal_line("(b) ... and against a fresh copy (speed-up over the copy)", got,
                               "> 1x", got is not None and got > 1, rm, copy, "the copy"))
        sreads, _ = records_of(tree, "sread", "sdefrag", lambda f: f["variant"])
        aged, boot = median_run(sreads.get("aged")), median_run(sreads.get("boot-module"))
        got = ratio(aged, boot)
        lines.append(goal_line("(c) the cold start after record + colocate (module), speed-up "
                               "over the aged", got, ">= 3.3x", got is not None and got >= 3.3,
                               boot, median_run(sreads.get("ideal")), "the ideal"))
    return "\n".join(lines)


def start_section(tree):
    """The cold start's table: model time first, ratios to the aged."""
    if not tree:
        return "(not run)"
    reads, cost = records_of(tree, "sread", "sdefrag", lambda f: f["variant"])

    def med(v):
        return median_run(reads.get(v))

    aged = med("aged")
    head = ["variant", "model s (x aged)", "wall s", "requests", "seeks",
            "seek distance (cylinders)", "read-ahead hits", "defrag wall s", "files listed"]
    rows = [head, ["---"] * len(head)]
    for v in START_VARIANTS:
        f, c = med(v), cost.get(v, {})
        if f is None:
            rows.append([START_VARIANT_NAMES[v]] + ["-"] * (len(head) - 1))
            continue
        ms = float(f["model_read_ms"])
        ratio = f" ({float(aged['model_read_ms']) / ms:.1f}x)" if aged and ms > 0 else ""
        rows.append([START_VARIANT_NAMES[v], f"{ms / 1000:.2f}{ratio}", f["secs"],
                     f["model_reads"], f["model_seeks"], f["model_seek_cylinders"],
                     f["model_ra_hits"], c.get("secs", "-"),
                     c.get("listed", "-") if v.startswith("boot") else "-"])
    return ("`chroot MOUNT python3` (Debian's, with its standard library, on the image, "
            "written before the ageing) sets Django up and imports about 600 modules of "
            "the standard library, the aged package and its dependencies; the model time "
            "is the disk's for the whole start.\n\n"
            + "\n".join("| " + " | ".join(r) + " |" for r in rows)
            + "\n\nWhere the start's disk time goes:\n\n"
            + kinds_table([(START_VARIANT_NAMES[v], med(v)) for v in START_VARIANTS]))


def tree_section(tree):
    """The aged tree's tables: cold reads by model time, and the cost."""
    if not tree:
        return "(not run: make bench-quick has no aged tree)"
    reads, cost = records_of(tree, "tread", "tdefrag", lambda f: (f["variant"], f["what"]))

    def med(v, w):
        return median_run(reads.get((v, w)))

    head = ["variant"]
    for w, name in TREE_READS.items():
        head += [f"{name}: model s (x aged, x copy)", "wall s", "seeks"]
    head += ["defrag wall s", "defrag model s"]
    rows = [head, ["---"] * len(head)]
    for v in TREE_VARIANTS:
        row = [TREE_VARIANT_NAMES[v]]
        for w in TREE_READS:
            f = med(v, "ideal" if v == "ideal" else w)
            if f is None or (v == "ideal" and w != "grep"):
                row += ["-"] * 3
                continue
            ms = float(f["model_read_ms"])
            ratios = []
            for ref in ("aged", "copy"):
                r = med(ref, w)
                if r and ms > 0:
                    ratios.append(f"{float(r['model_read_ms']) / ms:.1f}x")
            row += [f"{ms / 1000:.2f} (" + ", ".join(ratios) + ")", f["secs"], f["model_seeks"]]
        c = cost.get(v)
        row += ["-", "-"] if c is None else [
            c["secs"], f"{(float(c['model_read_ms']) + float(c['model_write_ms'])) / 1000:.2f}"]
        rows.append(row)
    img = tree["image"]
    return (f"{img['package']} {img['first']} .. {img['last']}, {img['releases']} releases "
            f"installed over each other (tests/agetree.py): {img['files']} files, "
            f"{img['mib']} MiB. Ratios are speed-ups: the aged (or copied) tree's model "
            "time over the variant's. The ideal is `cat` of one file holding the data "
            "(no directories, no inodes), in the grep column.\n\n"
            + "\n".join("| " + " | ".join(r) + " |" for r in rows)
            + "\n\nWhere `grep -r`'s disk time goes:\n\n"
            + kinds_table([(TREE_VARIANT_NAMES[v], med(v, "ideal" if v == "ideal" else "grep"))
                           for v in TREE_VARIANTS]))


class Data:
    """The records, indexed."""

    def __init__(self, results):
        self.r = results
        self.reads = {}  # (profile, variant, what) -> [(secs, reqs)]
        self.model = {}  # (variant, what) -> [the disk model's fields of a read]
        self.defrag = {}  # (profile, variant) -> fields
        self.copy = {}  # (profile, what) -> fields
        self.layout = {}  # (profile, variant) -> fields
        self.growth = []  # fields
        self.maps = {}  # variant -> {"blocks": n, "free": [...], "set": [...]}
        self.master = {}
        self.record = {}  # profile -> fields
        self.device = {}
        for kind, f, text in results["records"]:
            if kind == "read":
                key = (f["profile"], f["variant"], f["what"])
                self.reads.setdefault(key, []).append((float(f["secs"]), int(f["read_reqs"])))
                if "model_read_ms" in f:
                    self.model.setdefault((f["variant"], f["what"]), []).append(f)
            elif kind == "defrag":
                self.defrag[(f["profile"], f["variant"])] = f
            elif kind == "copy":
                self.copy[(f["profile"], f["what"])] = f
            elif kind == "layout":
                self.layout[(f["profile"], f["variant"])] = f
            elif kind == "growth" and f.get("extents"):
                self.growth.append(f)
            elif kind == "master":
                self.master = f
            elif kind == "record":
                self.record[f["profile"]] = f
            elif kind == "device":
                self.device = f
            elif kind == "map":
                words = text.split()
                m = self.maps.setdefault(f["variant"], {"blocks": 0, "free": [], "set": []})
                if words[1] == "blocks":
                    m["blocks"], m["bs"] = int(words[2]), int(words[3])
                else:
                    m[words[1]].append((int(words[2]), int(words[3])))

    def profiles(self):
        return [p for p in ("hdd", "ssd") if any(k[0] == p for k in self.reads)]

    def read(self, profile, variant, what):
        """(median, min, max, median requests) or None."""
        runs = self.reads.get((profile, variant, what))
        if not runs:
            return None
        secs = [s for s, _ in runs]
        return (statistics.median(secs), min(secs), max(secs),
                statistics.median(r for _, r in runs))


    def model_read(self, variant, what):
        """The disk model's figures of a variant's cold read, the run of
        median service time: {key: float} or None."""
        f = median_run(self.model.get((variant, what)))
        if f is None:
            return None
        return {k[len("model_"):]: float(v) for k, v in f.items()
                if k.startswith("model_")} | {"wall": float(f["secs"])}


def model_table(d):
    """The cold reads on the seek-aware disk: the model's service time
    first (deterministic), then the guest's wall time and what the disk
    did."""
    head = ["variant"]
    for what in ("set", "big"):
        head += [f"{what}: model s (x ideal)", "wall s", "requests", "seeks",
                 "seek distance (cylinders)", "read-ahead hits"]
    rows = [head, ["---"] * len(head)]
    for v in VARIANTS:
        row = [VARIANT_NAMES[v]]
        for what in ("set", "big"):
            m = d.model_read(v, what)
            if m is None:
                row += ["-"] * 6
                continue
            ratios = []
            for ref in ("ideal",):
                r = d.model_read(ref, what)
                if r and r["read_ms"] > 0:
                    ratios.append(f"{m['read_ms'] / r['read_ms']:.1f}x")
            row += [f"{m['read_ms'] / 1000:.3f}" + (f" ({', '.join(ratios)})" if ratios else ""),
                    f"{m['wall']:.2f}", f"{m['reads']:.0f}", f"{m['seeks']:.0f}",
                    f"{m['seek_cylinders']:.0f}", f"{m['ra_hits']:.0f}"]
        rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def serving_table(rows):
    if not rows:
        return "(not measured)"
    out = [["request", "ms each, wall"], ["---"] * 2] + [[w, f"{ms:.3f}"] for w, ms in rows]
    return "\n".join("| " + " | ".join(r) + " |" for r in out)


def calibration_table():
    rows = [["the model's disk", "model", "7200 rpm datasheet"], ["---"] * 3]
    rows += [[what, str(model), sheet] for what, model, sheet in diskmodel.calibration()]
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def fmt_read(d, profile, variant, what):
    x = d.read(profile, variant, what)
    if x is None:
        return "-"
    ideal = d.read(profile, "ideal", what)
    ratio = f" ({x[0] / ideal[0]:.1f}x)" if ideal and ideal[0] > 0 else ""
    spread = f" [{x[1]:.2f}-{x[2]:.2f}]" if x[2] > x[1] else ""
    return f"{x[0]:.2f}{spread}{ratio}, {x[3]:.0f} req"


def main_table(d):
    profiles = d.profiles()
    head = ["variant"] + [f"{p.upper()} {w} s" for p in profiles for w in ("set", "big")]
    rows = [head, ["---"] * len(head)]
    for v in VARIANTS:
        rows.append([VARIANT_NAMES[v]] + [fmt_read(d, p, v, w) for p in profiles
                                          for w in ("set", "big")])
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def cost_table(d):
    profiles = d.profiles()
    head = ["variant"] + [f"{p.upper()} {c}" for p in profiles for c in ("s", "MiB read/written")]
    rows = [head, ["---"] * len(head)]
    for v in VARIANTS[1:-1]:
        row = [VARIANT_NAMES[v]]
        for p in profiles:
            f = d.defrag.get((p, v))
            row += ["-", "-"] if f is None else [
                f["secs"], f"{f['read_mib']} / {f['written_mib']}"]
        rows.append(row)
    for what in ("set", "big"):
        row = [f"copy bound: cat of the {what} into one new file + sync"]
        for p in profiles:
            f = d.copy.get((p, what))
            row += ["-", "-"] if f is None else [
                f["secs"], f"{f['read_mib']} / {f['written_mib']}"]
        rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def extents_table(d):
    profiles = d.profiles()
    head = ["variant"] + [f"{p.upper()} extents set / big" for p in profiles]
    rows = [head, ["---"] * len(head)]
    for v in VARIANTS:
        row = [VARIANT_NAMES[v]]
        for p in profiles:
            f = d.layout.get((p, v))
            row.append("-" if f is None else f"{f['set_extents']} / {f['big_extents']}")
        rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def unit_table(d):
    rows = [["move unit (pages)", "HDD s", "MiB read/written", "write requests",
             "big files' extents after"], ["---"] * 5]
    for u in ("0", "4", "8"):
        f = d.defrag.get(("hdd", f"unit-{u}"))
        lay = d.layout.get(("hdd", f"unit-{u}"), {})
        if f:
            rows.append([str(1 << int(u)), f["secs"], f"{f['read_mib']} / {f['written_mib']}",
                         f["write_reqs"], lay.get("big_extents", "-")])
    f = d.defrag.get(("hdd", "files-module"))
    if f:
        rows.append(["2048 (default)", f["secs"], f"{f['read_mib']} / {f['written_mib']}",
                     f["write_reqs"], d.layout.get(("hdd", "files-module"), {}).get(
                         "big_extents", "-")])
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def record_lines(d):
    lines = []
    for p in d.profiles():
        f = d.record.get(p)
        if f:
            lines.append(f"* {p.upper()}: {f['listed']} files recorded for {f['of']} read; "
                         f"{f['same_place']} in the same place of the order")
    f = d.device
    if f:
        lines.append(f"* `e4defrag --time-limit 5s /dev/vda` (module, HDD) until a run got to the "
                     f"end: {f['runs']} runs, {f['secs']} s in all, for {f['files']} files; "
                     f"data {f['data']}")
    return "\n".join(lines) or "(not run)"


def slope(xs, ys):
    """The log-log slope between the two largest points: 1 is linear."""
    pts = [(x, y) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    (x1, y1), (x2, y2) = pts[-2], pts[-1]
    return math.log(y2 / y1) / math.log(x2 / x1)


def growth_word(s):
    if s is None:
        return "n/a"
    word = "linear" if 0.8 <= s <= 1.2 else ("sublinear" if s < 0.8 else "superlinear")
    return f"{word} (log-log slope {s:.2f})"


def growth_tables(d):
    host = d.r["host_growth"]
    lines = []
    if host:
        rows = [["files", "-c s", "-c RSS MiB", "per-file s", "per-file RSS MiB",
                 "-r s", "-r RSS MiB"], ["---"] * 7]
        for g in host:
            row = [str(g["files"])]
            for k in ("check", "per-file", "colocate"):
                row += [f"{g[k]['secs']:.2f}", f"{g[k]['rss_kib'] / 1024:.1f}"]
            rows.append(row)
        lines.append("\n".join("| " + " | ".join(r) + " |" for r in rows))
        n = [g["files"] for g in host]
        for k, name in (("check", "-c"), ("per-file", "per-file"), ("colocate", "-r")):
            lines.append(f"* `{name}`: time {growth_word(slope(n, [g[k]['secs'] for g in host]))}, "
                         f"peak RSS {growth_word(slope(n, [g[k]['rss_kib'] for g in host]))}")
    if d.growth:
        rows = [["extents before", "after", "blocks (1 KiB)", "module s"], ["---"] * 4]
        for g in d.growth:
            rows.append([g["extents"], g["after"], g["blocks"], g["secs"]])
        lines.append("\n".join("| " + " | ".join(r) + " |" for r in rows))
        e = [int(g["extents"]) for g in d.growth]
        lines.append("* module time against extents, same file size: "
                     + growth_word(slope(e, [float(g["secs"]) for g in d.growth])))
    return "\n\n".join(lines)


def per_profile(d):
    """A figure with one panel per disk profile: (figure, [(axes, profile)])."""
    profiles = d.profiles()
    fig, axes = plt.subplots(1, len(profiles), figsize=(6 * len(profiles), 4.5), squeeze=False)
    return fig, list(zip(axes[0], profiles))


def finish(fig, axes_profiles, ylabel, xnames, out, name):
    """Labels each panel, then writes the figure to OUT/NAME."""
    for ax, p in axes_profiles:
        ax.set_xticks(range(len(xnames)), xnames, rotation=35, ha="right")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{p.upper()} profile")
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, name), dpi=110)
    plt.close(fig)


def plot_reads(d, out):
    fig, panels = per_profile(d)
    for ax, p in panels:
        width = 0.38
        for i, what in enumerate(("set", "big")):
            vals = [d.read(p, v, what) for v in VARIANTS]
            med = [x[0] if x else 0 for x in vals]
            err = [[x[0] - x[1] if x else 0 for x in vals], [x[2] - x[0] if x else 0 for x in vals]]
            xs = [j + (i - 0.5) * width for j in range(len(VARIANTS))]
            ax.bar(xs, med, width, yerr=err, capsize=3,
                   label="the set, in read order" if what == "set" else "the big files")
    finish(fig, panels, "cold read, seconds (median, min-max)", VARIANTS, out, "read-times.png")


def plot_cost(d, out):
    fig, panels = per_profile(d)
    vs = VARIANTS[1:-1]
    for ax, p in panels:
        secs = [float(d.defrag[(p, v)]["secs"]) if (p, v) in d.defrag else 0 for v in vs]
        ax.bar(range(len(vs)), secs, color="tab:purple")
        bound = sum(float(d.copy[(p, w)]["secs"]) for w in ("set", "big") if (p, w) in d.copy)
        ax.axhline(bound, color="black", linestyle="--",
                   label=f"copy bound, set + big files ({bound:.1f} s)")
    finish(fig, panels, "defragmentation wall time, s", vs, out, "defrag-cost.png")


def plot_growth(d, out):
    host = d.r["host_growth"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    if host:
        n = [g["files"] for g in host]
        for k, name in (("check", "-c"), ("per-file", "per-file"), ("colocate", "-r")):
            axes[0].loglog(n, [g[k]["secs"] for g in host], "o-", label=name)
            axes[1].loglog(n, [g[k]["rss_kib"] / 1024 for g in host], "o-", label=name)
        axes[0].set(xlabel="files", ylabel="tool wall time, s", title="tool time (host, MOVE_EXT)")
        axes[1].set(xlabel="files", ylabel="peak RSS, MiB", title="tool memory")
        axes[0].legend()
        axes[1].legend()
    if d.growth:
        e = [int(g["extents"]) for g in d.growth]
        axes[2].loglog(e, [float(g["secs"]) for g in d.growth], "o-", color="tab:red")
        axes[2].set(xlabel="extents before (same file size)", ylabel="module wall time, s",
                    title="EXT4_IOC_DEFRAG (guest, TCG)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "growth.png"), dpi=110)
    plt.close(fig)


def plot_maps(d, out):
    """The disk block by block, folded into rows: set, other, free."""
    names = [v for v in ("none", "e2fsprogs", "r-module", "r-move-ext") if v in d.maps]
    if not names:
        return
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4.6), squeeze=False)
    cmap = ListedColormap(["#bbbbbb", "white", "#d62728"])
    for ax, v in zip(axes[0], names):
        m = d.maps[v]
        # statvfs leaves out the metadata's blocks: the disk's size counts.
        total = max(m["blocks"], (d.r["params"]["fs_mib"] << 20) // m["bs"])
        cols = 512 if total > 65536 else 256
        rows = -(-total // cols)
        cells = [0] * (rows * cols)
        for kind, value in (("free", 1), ("set", 2)):
            for start, length in m[kind]:
                for b in range(start, min(start + length, total)):
                    cells[b] = value
        grid = [cells[r * cols:(r + 1) * cols] for r in range(rows)]
        ax.imshow(grid, cmap=cmap, vmin=0, vmax=2, interpolation="nearest", aspect="auto")
        ax.set_title(f"{v}\nred: the set, white: free, grey: other", fontsize=9)
        ax.set_xlabel(f"block % {cols}")
        ax.set_ylabel(f"block / {cols}")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "block-map.png"), dpi=110)
    plt.close(fig)


def write(results, out):
    d = Data(results)
    if d.profiles():  # not with --only host or tree
        plot_reads(d, out)
        plot_cost(d, out)
    plot_growth(d, out)
    plot_maps(d, out)
    p = results["params"]
    prof = results["profiles"]
    table = model_table(d)
    doc = f"""# e4defrag benchmark ({results['size']})

Image: seed {p['seed']}, {p['fs_mib']} MiB ext4 (4 KiB blocks), a set of
{p['files']} small files in 24 directories read in a seeded order, and
{p['bigs']} big files of {p['big_mib']} MiB; {p['runs']} cold read(s) per
variant. Master image built in {d.master.get('secs', '?')} s: the set in
{d.master.get('set_extents', '?')} extents, the big files in
{d.master.get('big_extents', '?')}. Guest boot {results.get('guest_secs', '-')} s,
everything {results['total_secs']} s.

Disks: HDD, {prof['hdd']['what']} (tests/diskmodel.py, served by nbdkit
over NBD): seek time from the distance, half a revolution per
repositioning, zoned media rate, a read-ahead cache of a few segments, a
write cache, one request at a time. SSD, {prof['ssd']['what']}: QEMU block
throttling, {prof['ssd']['iops']} IOPS and {prof['ssd']['bps'] // 1000000} MB/s,
where every request costs the same wherever it lands (an SSD has no seek).
See Documentation/ext4-defrag/benchmark.rst.

## Goals (model time)

{goals_section(d, results.get("tree"))}

## Cold reads on the seek-aware HDD

The model's service time is the disk's own (deterministic: TCG's speed
does not enter it); wall time is the guest's, with TCG's CPU cost in it.
Median run by model time.

{table}

Where the set's disk time goes (the median set read):

{kinds_table([(VARIANT_NAMES[v], median_run(d.model.get((v, "set")))) for v in VARIANTS])}

### The model's calibration

{calibration_table()}

What serving a request costs beyond the model's time (nbdkit's Python
plugin counting without sleeping, read by `qemu-img bench` at queue depth 1
over NBD): it adds to the guest's wall time only, never to the model's.

{serving_table(results.get("serving_cost"))}

## Cold reads, wall time: seconds (median [min-max]) (ratio to ideal), requests

{main_table(d)}

![read times](read-times.png)

## An aged tree, read the way tools read trees (seek-aware HDD)

{tree_section(results.get("tree"))}

## A program's cold start on the aged image (seek-aware HDD)

{start_section(results.get("tree"))}

## The boot workflow

`e4defrag --record` ran while the set was read cold in its order; the
variant `boot` colocated the recorded list with `-r --order LIST
--only-listed` on the mount point (module).

{record_lines(d)}

## Extents after each variant

{extents_table(d)}

## Cost of defragmenting

{cost_table(d)}

![defrag cost](defrag-cost.png)

### Move units on the HDD profile (the big files, module)

{unit_table(d)}

## How cost grows

{growth_tables(d)}

![growth](growth.png)

## Block map of the set (HDD profile)

![block map](block-map.png)
"""
    if results["errors"]:
        doc += "\n## Errors\n\n" + "\n".join(f"* {e}" for e in results["errors"]) + "\n"
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(doc)
    return "\n\n".join([table, cost_table(d), unit_table(d), growth_tables(d)])
