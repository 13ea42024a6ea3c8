#!/usr/bin/python3
"""Compares the selftest runs of tests/samba-selftest/run and prints the table.

report.py RUNDIR SETS USERS TESTS [PLAIN_USER]
  RUNDIR  the run's log folder, with SET-USER.{subunit,log,result,nsenter,banners,prefix}
  SETS    comma list of script sets in order (orig first when present: the reference)
  USERS   comma list of user tags (root, user)
  TESTS   the TESTS= patterns (shown only)
  PLAIN_USER  the plain user's name: test names with "\\NAME" are shown as "\\root"
Exit 0 when every set has the same outcome as orig for every test, every run's checks pass
and nothing was left; else 1.
"""
import calendar
import os
import re
import sys

OUTCOMES = {
    "success": "success", "successful": "success",
    "failure": "failure", "fail": "failure",
    "error": "error", "skip": "skip", "xfail": "xfail", "uxsuccess": "uxsuccess",
}


def parse_subunit(path):
    """Subunit v1 text (what selftest's filter-subunit writes to st/subunit): outcome per test,
    testsuites as 'suite NAME'. A test started but never ended is 'unfinished'."""
    out, order = {}, []
    if not os.path.exists(path):
        return None, []
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8", "replace").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i].rstrip("\r")
        i += 1
        m = re.match(r"^(test|testing|testsuite|[a-z]+|testsuite-[a-z]+):? (.*)$", line)
        if not m:
            continue
        kw, rest = m.group(1), m.group(2)
        # detail block: "... [" up to a line "]" (also "[ multipart")
        block = False
        if rest.endswith(" [") or rest.endswith(" [ multipart"):
            rest = rest[: rest.rindex(" [")]
            block = True
        name = rest.strip()
        if kw in ("test", "testing"):
            if name not in out:
                order.append(name)
            out[name] = "unfinished"
        elif kw == "testsuite":
            key = "suite " + name
            if key not in out:
                order.append(key)
            out[key] = "unfinished"
        elif kw.startswith("testsuite-") and kw[len("testsuite-"):] in OUTCOMES:
            key = "suite " + name
            if key not in out:
                order.append(key)
            out[key] = OUTCOMES[kw[len("testsuite-"):]]
        elif kw in OUTCOMES:
            if name not in out:
                order.append(name)
            out[name] = OUTCOMES[kw]
        if block:
            while i < len(lines) and lines[i].rstrip("\r") != "]":
                i += 1
            i += 1
    return out, order


def read_kv(path):
    d = {}
    if os.path.exists(path):
        for line in open(path, errors="replace"):
            k, _, v = line.rstrip("\n").partition("=")
            d.setdefault(k, []).append(v)
    return d


def read_lines(path):
    if not os.path.exists(path):
        return []
    return [l.rstrip("\n") for l in open(path, errors="replace") if l.strip()]


def log_segments(log):
    """Per testenv: (start, end) of its setup as selftest's output shows it, each line stamped
    when its first byte came. A setup starts at a "PROVISIONING ..." line (or, for a testenv set
    up without one, such as dns_hub, at its first "STARTING <daemon> for <env>..." line), the
    "STARTING ... for <env>" lines name the testenv, and it ends where the next setup starts or
    a test starts ("[n(m)/N at ...] name"). Selftest's output passes through its subunit
    filters, which show some setups late or not at all: see setup_times."""
    segs = {}
    if not os.path.exists(log):
        return segs
    cur_env, cur_t = None, None

    def close(t):
        if cur_env is not None and cur_env not in segs:
            segs[cur_env] = (cur_t, t)

    for line in open(log, errors="replace"):
        m = re.match(r"^(\d+\.\d+) (.*)$", line.rstrip("\n"))
        if not m:
            continue
        t, text = float(m.group(1)), m.group(2)
        if text.startswith("PROVISIONING"):
            close(t)
            cur_env, cur_t = None, t
            m2 = re.search(r"IN '[^']*/([^/']+)'", text)
            if m2:
                cur_env = m2.group(1)
            continue
        m2 = re.match(r"^STARTING \S+ for ([A-Za-z0-9_]+)\.\.\.", text)
        if m2:
            env = m2.group(1)
            if cur_t is not None and cur_env is None:
                cur_env = env
            elif env != cur_env and env not in segs:
                close(t)
                cur_env, cur_t = env, t
            continue
        if re.match(r"^\[\d+\(\d+\)/\d+ at [^]]*\] ", text):
            close(t)
            cur_env, cur_t = None, None
    return segs


def subunit_gaps(subunit):
    """Per testenv: (start, end) of the pause before the first testsuite that uses it, from
    st/subunit: selftest announces "testsuite: NAME(ENV)", sets ENV (and any testenv it needs)
    up, and the next "time:" line comes when the suite starts. Samba 4.18 and later report the
    time just before announcing the suite (its testenv is set up by then): the pause is then the
    one ending at that "time:" line."""
    gaps = {}
    if not os.path.exists(subunit):
        return gaps
    last_t, prev_t, waiting, after_time = None, None, None, False
    for line in open(subunit, errors="replace"):
        m = re.match(r"^time: (\d+)-(\d+)-(\d+) (\d+):(\d+):(\d+)(\.\d+)?Z?$", line.strip())
        if m:
            y, mo, d, h, mi, sec, frac = m.groups()
            t = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(sec))) + float(frac or 0)
            if waiting and last_t is not None:
                gaps[waiting] = (last_t, t)
            waiting, prev_t, last_t, after_time = None, last_t, t, True
            continue
        m = re.match(r"^testsuite: .*\(([^()]*)\)$", line.strip())
        if m:
            env = m.group(1).split(":")[0]
            if env not in gaps:
                if after_time and prev_t is not None:
                    gaps[env] = (prev_t, last_t)
                else:
                    waiting = env
        after_time = False
    return gaps


def setup_times(log, subunit):
    """Seconds per testenv setup: the pause before its first testsuite when no other testenv
    was set up in it (the pause includes the provisioning that the output shows late), else its
    own part of the output (an AD member's pause includes the DCs it joins; a DC set up for
    the member comes before its own first suite)."""
    segs, gaps = log_segments(log), subunit_gaps(subunit)
    times = {}
    for env in set(segs) | set(gaps):
        if env in segs and (env not in gaps or segs[env][0] < gaps[env][0] - 0.5):
            times[env] = segs[env][1] - segs[env][0]  # set up before its first suite's pause
        elif env in gaps and not any(gaps[env][0] - 0.5 <= st < gaps[env][1]
                                     for other, (st, _) in segs.items() if other != env):
            times[env] = gaps[env][1] - gaps[env][0]
        elif env in segs:
            times[env] = segs[env][1] - segs[env][0]
    return times


BANNER = re.compile(r"Created namespace for (\S*) \(([^)]*)\) PID (\d+)\s*$")


def main():
    rundir, sets, users, tests = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","), sys.argv[4]
    plain_user = sys.argv[5] if len(sys.argv) > 5 else ""
    runs = [(s, u) for u in users for s in sets]
    data, problems, res_of, base_of = {}, [], {}, {}
    all_tests = []
    for s, u in runs:
        base = os.path.join(rundir, f"{s}-{u}")
        outcomes, order = parse_subunit(base + ".subunit")
        if u == "user" and plain_user:
            # Some test names carry the user running them (smbclient as DOMAIN\\USER): one row.
            norm = lambda t: re.sub(r"([\\/+])" + re.escape(plain_user) + r"\b", r"\1root", t)
            outcomes = {norm(k): v for k, v in (outcomes or {}).items()} if outcomes is not None else None
            order = [norm(t) for t in order]
        res = read_kv(base + ".result")
        res_of[(s, u)] = res
        base_of[(s, u)] = base
        d = {
            "outcomes": outcomes or {},
            "has_subunit": outcomes is not None,
            "rc": (res.get("rc") or ["?"])[0],
            "wall": float(res["t1"][0]) - float(res["t0"][0]) if "t0" in res and "t1" in res else None,
            "leftovers": [f"{k[len('leftover-'):]}: {v}" for k, vs in res.items() if k.startswith("leftover-") for v in vs],
            "nsenter": read_lines(base + ".nsenter"),
            "banners": read_lines(base + ".banners"),
            "setup": setup_times(base + ".log", base + ".subunit"),
            "prefix": (read_lines(base + ".prefix") or [""])[0],
            # namespaces of the run's processes other than the machine's (this script's)
            "ns_made": sorted({l.split()[0] for l in read_lines(base + ".ns")} - set(read_lines(base + ".ns-machine"))),
        }
        # testenvs: folders of the prefix with an exports.sh (dns_hub has it one level down)
        envs = []
        if d["prefix"] and os.path.isdir(d["prefix"]):
            for e in sorted(os.listdir(d["prefix"])):
                top = os.path.join(d["prefix"], e)
                if os.path.isfile(os.path.join(top, "exports.sh")):
                    envs.append(e)
                elif os.path.isdir(top):
                    envs += [f"{e}/{x}" for x in sorted(os.listdir(top))
                             if os.path.isfile(os.path.join(top, x, "exports.sh"))]
        d["envs"] = envs
        data[(s, u)] = d
        for t in order:
            if t not in all_tests:
                all_tests.append(t)

    # Checks per run.
    for (s, u), d in data.items():
        d["checks"] = []
        if "timeout" in res_of[(s, u)]:
            d["checks"].append(f"selftest still running after {res_of[(s, u)]['timeout'][0]} s: ended (--run-timeout)")
        if not d["has_subunit"]:
            d["checks"].append("no subunit output")
        # Banners: one "Created namespace for NAME (ENVNAME) PID n" per testenv, ENVNAME set
        # (<testenv>.<daemon>, or the testenv's name for dns_hub), and one "To communicate with
        # this testenv, use: PATH" with the testenv's nsenter.sh.
        d["banner_ids"] = set()
        for b in d["banners"]:
            if "Created namespace for" not in b:
                continue
            m = BANNER.search(b)
            if not m:
                d["checks"].append(f"banner: not 'Created namespace for NAME (ENVNAME) PID n': {b!r}")
                continue
            d["banner_ids"].add((m.group(1), m.group(2)))
        if "orig" not in sets or s == "orig":  # (else compared with the originals' below)
            for nb, env in sorted(d["banner_ids"]):
                if not re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_-]+)?", env):
                    d["checks"].append(f"banner: ENVNAME empty or not <testenv>.<daemon>: "
                                       f"'Created namespace for {nb} ({env}) PID n'")
        seen = {env.split(".")[0] for _, env in d["banner_ids"]}
        missing = [e for e in d["envs"] if e.split("/")[0] not in seen]
        if missing and ("orig" not in sets or s == "orig") and not any(c.startswith("banner") for c in d["checks"]):
            d["checks"].append(f"banner: no 'Created namespace for' line naming {', '.join(missing)}")
        helpers = {b.split("use:", 1)[1].strip() for b in d["banners"] if "To communicate with this testenv, use:" in b}
        for e in d["envs"]:
            path = os.path.join(d["prefix"], e, "nsenter.sh")
            if path not in helpers:
                d["checks"].append(f"banner: no 'To communicate with this testenv, use: {path}'")
        # nsenter.sh from the caller's own shell.
        ok = {l.split()[0] for l in d["nsenter"] if l.split()[1:2] == ["ok"]}
        for l in d["nsenter"]:
            if l.split()[1:2] == ["FAIL"]:
                d["checks"].append(f"nsenter.sh of {l.split()[0]} did not work from the caller's shell: {' '.join(l.split()[2:])}")
        for e in d["envs"]:
            if e not in ok and not any(l.split()[0] == e for l in d["nsenter"]):
                d["checks"].append(f"nsenter.sh of {e}: never written or never tried")
        # What the namespace tools said (ours: "tool: message"; the originals: ip, nsenter, unshare).
        d["messages"] = []
        files = [base_of[(s, u)] + ".log"]
        if d["prefix"] and os.path.isdir(d["prefix"]):
            files += [os.path.join(d["prefix"], e, f) for e in sorted(os.listdir(d["prefix"]))
                      if os.path.isdir(os.path.join(d["prefix"], e))
                      for f in sorted(os.listdir(os.path.join(d["prefix"], e))) if f.endswith("_test.log")]
        tool = re.compile(r"^(?:\d+\.\d+ )?((?:ns-unshare|ns-exec|veth-pair|br-attach|ns-ls|start_in_ns\.sh|"
                          r"add_bridge_iface\.sh|create_bridge\.sh|mk_nsenter\.sh|nsenter-helper\.sh|"
                          r"nsenter|unshare|ip|RTNETLINK answers|Cannot find device)\b:? .*)$")
        for f in files:
            if not os.path.isfile(f):
                continue
            for line in open(f, errors="replace"):
                m = tool.match(line.rstrip("\n"))
                if m and m.group(1) not in d["messages"]:
                    d["messages"].append(m.group(1))
        if s == "iso" and ok:
            # NSTOOLS_ISOLATE=all: every testenv that came up has PID, mount, UTS and IPC
            # namespaces of its own.
            for k in ("pid", "mnt", "uts", "ipc"):
                n = sum(1 for x in d["ns_made"] if x.startswith(k + ":"))
                if n < len(ok):
                    d["checks"].append(f"isolation: {n} {k} namespaces made for {len(ok)} testenvs that came up (NSTOOLS_ISOLATE=all)")
        for lo in d["leftovers"]:
            d["checks"].append(f"leftover {lo}")

    # The banners name the same testenvs and daemons as the originals' (PIDs aside).
    if "orig" in sets:
        for (s, u), d in data.items():
            if s == "orig":
                continue
            ref_ids = data[("orig", u)]["banner_ids"]
            for nb, env in sorted(ref_ids - d["banner_ids"]):
                got = sorted(e for n, e in d["banner_ids"] if n == nb)
                d["checks"].append(f"banner: orig prints 'Created namespace for {nb} ({env}) PID n', {s} "
                                   + (" and ".join(f"'Created namespace for {nb} ({e}) PID n'" for e in got)
                                      if got else "prints no such line"))
    for (s, u), d in data.items():
        problems += [f"{s}/{u}: {c}" for c in d["checks"]]

    # Outcome differences against orig (same user), and the selftest exit status.
    ref = "orig" if "orig" in sets else None
    diffs = []
    for t in all_tests:
        if ref is None:
            continue
        per = []
        for u in users:
            r = data[(ref, u)]["outcomes"].get(t, "absent")
            for s in sets:
                o = data[(s, u)]["outcomes"].get(t, "absent")
                if s != ref and o != r:
                    per.append(f"{s}/{u} {o} (orig/{u} {r})")
        if per:
            diffs.append(f"{t}: {', '.join(per)}")
    if ref:
        for u in users:
            for s in sets:
                if s != ref and data[(s, u)]["rc"] != data[(ref, u)]["rc"]:
                    diffs.append(f"selftest exit status: {s}/{u} {data[(s, u)]['rc']}, orig/{u} {data[(ref, u)]['rc']}")

    # The table.
    cols = [f"{s}/{u}" for s, u in runs]
    rows = []
    for t in all_tests:
        cells = []
        for s, u in runs:
            o = data[(s, u)]["outcomes"].get(t, "absent")
            r = data[(ref, u)]["outcomes"].get(t, "absent") if ref else o
            cells.append(o + (" *" if o != r else ""))
        rows.append((t, cells))
    rows.append(("selftest exit status", [data[r]["rc"] + (" (timeout)" if "timeout" in res_of[r] else "") for r in runs]))
    rows.append(("wall time (s)", [f"{data[r]['wall']:.0f}" if data[r]["wall"] is not None else "?" for r in runs]))
    envs = sorted({e.split("/")[0] for r in runs for e in list(data[r]["setup"]) + data[r]["envs"]})
    for e in envs:
        rows.append((f"setup {e} (s)", [f"{data[r]['setup'][e]:.1f}" if e in data[r]["setup"] else "-" for r in runs]))
    def count(r, kind):
        return sum(1 for c in data[r]["checks"] if c.startswith(kind))
    rows.append(("banners", ["ok" if count(r, "banner") == 0 else f"{count(r, 'banner')} bad" for r in runs]))
    rows.append(("testenvs", [str(len(data[r]["envs"])) for r in runs]))
    rows.append(("nsenter.sh from own shell", [
        f"{sum(1 for l in data[r]['nsenter'] if l.split()[1:2] == ['ok'])}/{len(data[r]['envs'])} ok" for r in runs]))
    rows.append(("namespaces made: net/user/pid/mnt", [
        "/".join(str(sum(1 for n in data[r]["ns_made"] if n.startswith(k + ":"))) for k in ("net", "user", "pid", "mnt"))
        for r in runs]))
    rows.append(("leftovers after 3 s", ["none" if not data[r]["leftovers"] else f"{len(data[r]['leftovers'])}" for r in runs]))

    w0 = max(len("test"), max(len(t) for t, _ in rows))
    widths = [max(len(c), max(len(cells[i]) for _, cells in rows)) for i, c in enumerate(cols)]
    print(f"TESTS={tests}")
    print("  ".join(["test".ljust(w0)] + [c.ljust(w) for c, w in zip(cols, widths)]).rstrip())
    print("  ".join(["-" * w0] + ["-" * w for w in widths]))
    for t, cells in rows:
        print("  ".join([t.ljust(w0)] + [c.ljust(w) for c, w in zip(cells, widths)]).rstrip())
    print("(* = outcome differs from orig for the same user; plain user's test names shown with root)")
    if diffs:
        print("\nDifferences in outcome from Samba's original scripts:")
        for d in diffs:
            print("  " + d)
    if problems:
        print("\nFailed checks:")
        shown = {}
        for p in problems:
            run = p.split(":", 1)[0]
            shown[run] = shown.get(run, 0) + 1
            if shown[run] <= 12:
                print("  " + p)
        for run, n in shown.items():
            if n > 12:
                print(f"  {run}: ... and {n - 12} more")
    msgs = [(f"{s}/{u}", m) for s, u in runs for m in data[(s, u)]["messages"]]
    if msgs:
        print("\nMessages from the namespace scripts and tools (selftest output and testenv logs):")
        for label, m in msgs:
            print(f"  {label}: {m[:240]}")
    if not all_tests:
        problems.append("no test ran")
        print("\nNo test ran: check TESTS= and the logs.")
    print(f"\nLogs: {rundir}")
    if diffs or problems:
        print(f"RESULT: FAIL ({len(diffs)} differences, {len(problems)} failed checks)")
        return 1
    print("RESULT: OK (same outcomes, all checks passed, nothing left)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
