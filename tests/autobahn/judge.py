#!/usr/bin/env python
"""Spec writer and judge for the Autobahn TestSuite run of scripts/autobahn.

Runs under the suite's own Python 2.7 (`spec` imports autobahntestsuite to
resolve case patterns) and, for `judge`, under any Python 2.7 or 3.

  judge.py spec  --template T --outdir DIR --url URL [--cases PAT]... --out SPEC --cases-out FILE
  judge.py judge --reports DIR --cases-file FILE --expected EXPECTED [--update-expected]

The judge reads only DIR/index.json (plus, for detail, the per-case report
files it names). wstest exits 0 whatever happened, so every selected case
must have a result there. Counting:
  passed  : behavior OK, NON-STRICT or INFORMATIONAL
  skipped : behavior UNIMPLEMENTED
  failed  : behavior FAILED (or anything else), no result at all,
            behaviorClose other than OK/INFORMATIONAL,
            or a result that differs from EXPECTED (regressions and
            improvements alike, so both show up in review)
The last line printed is `N passed, M failed, K skipped`; the exit status is
0 only when M is 0.
"""
from __future__ import print_function

import argparse
import json
import os
import sys

# Number of cases that `cases: ["*"]` selects in autobahntestsuite 25.10.1.
FULL_SUITE_CASES = 517

PASSED = ("OK", "NON-STRICT", "INFORMATIONAL")
SKIPPED = ("UNIMPLEMENTED",)
CLOSE_OK = ("OK", "INFORMATIONAL")

# For labelling a change as a regression or an improvement.
BEHAVIOR_RANK = {"OK": 4, "NON-STRICT": 3, "INFORMATIONAL": 3, "UNIMPLEMENTED": 1, "FAILED": 0}
CLOSE_RANK = {"OK": 2, "INFORMATIONAL": 2}

# Per-case report fields worth showing for a case that is not plainly OK.
DETAIL_FIELDS = ("result", "resultClose", "expectation", "expectedClose",
                 "localCloseCode", "remoteCloseCode", "remoteCloseReason",
                 "wasClean", "wasNotCleanReason", "droppedByMe", "failedByMe",
                 "wasCloseHandshakeTimeout", "wasServerConnectionDropTimeout",
                 "wasOpenHandshakeTimeout")


def case_key(case_id):
    return tuple(int(x) for x in case_id.split("."))


def load_json(path):
    with open(path) as f:
        return json.load(f)


def write_text(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


# ---------------------------------------------------------------- spec ----

def cmd_spec(args):
    from autobahntestsuite.case import (Cases, CaseBasename, CaseCategories,
                                        CaseSubCategories)
    from autobahntestsuite.caseset import CaseSet

    patterns = args.cases or ["*"]
    caseset = CaseSet("websocket", CaseBasename, Cases, CaseCategories,
                      CaseSubCategories)
    unknown = [p for p in patterns
               if "*" not in p and p not in caseset.CasesIndices]
    if unknown:
        sys.exit("judge.py: unknown case id(s): %s" % ", ".join(unknown))
    cases = caseset.parseSpecCases({"cases": patterns})
    if not cases:
        sys.exit("judge.py: no case matches %s" % " ".join(patterns))
    if patterns == ["*"] and len(cases) != FULL_SUITE_CASES:
        sys.exit("judge.py: the installed suite has %d cases, expected %d "
                 "(suite version changed?)" % (len(cases), FULL_SUITE_CASES))

    spec = load_json(args.template)
    spec["outdir"] = args.outdir
    spec["servers"][0]["url"] = args.url
    spec["cases"] = patterns
    write_text(args.out, json.dumps(spec, indent=2, sort_keys=True) + "\n")

    info = {
        "patterns": patterns,
        "cases": cases,
        "agent": spec["servers"][0]["agent"],
        "categories": dict((str(k), str(v)) for k, v in CaseCategories.items()),
    }
    write_text(args.cases_out, json.dumps(info, indent=1, sort_keys=True) + "\n")
    return 0


# --------------------------------------------------------------- judge ----

def outcome(entry):
    """'passed', 'skipped' or 'failed' for one index.json entry (or None)."""
    if entry is None:
        return "failed"
    if entry.get("behaviorClose") not in CLOSE_OK:
        return "failed"
    if entry.get("behavior") in PASSED:
        return "passed"
    if entry.get("behavior") in SKIPPED:
        return "skipped"
    return "failed"


def brief(entry):
    if entry is None:
        return "no result"
    return "%s/%s" % (entry.get("behavior"), entry.get("behaviorClose"))


def rank(entry):
    if entry is None:
        return (-1, -1)
    return (BEHAVIOR_RANK.get(entry.get("behavior"), 0),
            CLOSE_RANK.get(entry.get("behaviorClose"), 0))


def format_expected(results):
    lines = []
    for cid in sorted(results, key=case_key):
        r = results[cid]
        lines.append('  %s: {"behavior": %s, "behaviorClose": %s}' % (
            json.dumps(cid), json.dumps(r["behavior"]),
            json.dumps(r["behaviorClose"])))
    return "{\n" + ",\n".join(lines) + "\n}\n"


def group_table(cases, results, categories):
    cols = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
    groups = []
    rows = {}
    for cid in cases:
        g = cid.split(".")[0]
        if g not in rows:
            groups.append(g)
            rows[g] = dict((c, 0) for c in cols + ["cases", "bad close", "no result"])
        row = rows[g]
        row["cases"] += 1
        r = results.get(cid)
        if r is None:
            row["no result"] += 1
            continue
        b = r.get("behavior")
        row[b if b in cols else "FAILED"] += 1
        if r.get("behaviorClose") not in CLOSE_OK:
            row["bad close"] += 1
    extra = [c for c in ("bad close", "no result")
             if any(rows[g][c] for g in groups)]
    head = ["group", "cases"] + cols + extra
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join(["---"] * 2 + ["--:"] * (len(head) - 2)) + "|"]
    total = dict((c, 0) for c in head[1:])
    for g in groups:
        name = "%s %s" % (g, categories.get(g, ""))
        out.append("| " + " | ".join([name.strip()] + [str(rows[g][c]) for c in head[1:]]) + " |")
        for c in head[1:]:
            total[c] += rows[g][c]
    out.append("| **all** | " + " | ".join(str(total[c]) for c in head[1:]) + " |")
    return out


def case_detail(reports, entry):
    path = os.path.join(reports, entry.get("reportfile") or "")
    try:
        rep = load_json(path)
    except (IOError, OSError, ValueError):
        return ["      (case report %s unreadable)" % path]
    out = ["      description: %s" % " ".join(
        (rep.get("description") or "").split("<br>")[0].split())]
    for k in DETAIL_FIELDS:
        if k in rep and rep[k] not in (None, False, ""):
            out.append("      %s: %s" % (k, json.dumps(rep[k], sort_keys=True)))
    out.append("      report: %s" % path)
    return out


def cmd_judge(args):
    info = load_json(args.cases_file)
    cases = info["cases"]
    full = info["patterns"] == ["*"]
    agent = info.get("agent", "wschat")
    index_path = os.path.join(args.reports, "index.json")
    problems = []
    if args.harness_failed:
        problems.append("the run itself went wrong (wstest or server errors above)")

    index = None
    try:
        index = load_json(index_path)
    except (IOError, OSError) as e:
        problems.append("no %s (%s): wstest wrote no report (it writes "
                        "index.json only when it finishes)" % (index_path, e))
    except ValueError as e:
        problems.append("%s is not valid JSON (%s)" % (index_path, e))
    if index is None:
        index = {}
    elif not index:
        problems.append("index.json has no results: wstest could not connect "
                        "or the server died before the first case")
    results = index.get(agent, {}) if isinstance(index, dict) else {}
    if index and not results:
        problems.append("index.json has no agent %r (agents: %s)" % (
            agent, ", ".join(sorted(index))))

    extra = sorted(set(results) - set(cases), key=case_key)
    if extra:
        problems.append("index.json has results for unselected cases: %s" % " ".join(extra))

    # Expected results.
    expected = {}
    if os.path.exists(args.expected):
        try:
            expected = load_json(args.expected)
        except ValueError as e:
            problems.append("%s is not valid JSON: %s" % (args.expected, e))
    elif not args.update_expected:
        problems.append("%s does not exist: run scripts/autobahn --update-expected "
                        "to create it" % args.expected)

    counts = {"passed": 0, "failed": 0, "skipped": 0}
    verdict = {}
    for cid in cases:
        verdict[cid] = outcome(results.get(cid))

    changes = []
    if expected or not args.update_expected:
        for cid in cases:
            got = results.get(cid)
            got = got and {"behavior": got.get("behavior"),
                           "behaviorClose": got.get("behaviorClose")}
            exp = expected.get(cid)
            if got == exp:
                continue
            rg, re_ = rank(got), rank(exp)
            kind = ("REGRESSION" if rg < re_ else
                    "IMPROVEMENT" if rg > re_ else "CHANGED")
            if exp is None and got is not None:
                kind = "NEW"
            changes.append((cid, kind, exp, got))
            if not args.update_expected:
                verdict[cid] = "failed"
        if full:
            stale = sorted(set(expected) - set(cases), key=case_key)
            for cid in stale:
                changes.append((cid, "STALE", expected[cid], None))

    for cid in cases:
        counts[verdict[cid]] += 1

    # Report.
    n = len(cases)
    print("Autobahn TestSuite fuzzingclient results, agent %s, %d case%s%s:" % (
        agent, n, "" if n == 1 else "s",
        "" if full else " (selected by %s)" % " ".join(info["patterns"])))
    print()
    for line in group_table(cases, results, info.get("categories", {})):
        print(line)

    unusual = [cid for cid in cases
               if results.get(cid) is not None
               and (results[cid].get("behavior") not in ("OK", "UNIMPLEMENTED")
                    or results[cid].get("behaviorClose") not in CLOSE_OK)]
    missing = [cid for cid in cases if cid not in results]
    unimpl = [cid for cid in cases if results.get(cid, {}).get("behavior") == "UNIMPLEMENTED"
              and results[cid].get("behaviorClose") in CLOSE_OK]
    if unusual:
        print()
        print("Cases not plainly OK (behavior/behaviorClose, remote close code):")
        for cid in unusual:
            r = results[cid]
            print("  %-8s %-30s remoteCloseCode=%s  [%s]" % (
                cid, brief(r), r.get("remoteCloseCode"), outcome(r)))
            if args.detail:
                for line in case_detail(args.reports, r):
                    print(line)
    if unimpl:
        groups = {}
        for cid in unimpl:
            g = cid.split(".")[0]
            groups[g] = groups.get(g, 0) + 1
        print()
        print("UNIMPLEMENTED (skipped): %d cases (%s)" % (len(unimpl), ", ".join(
            "%s.*: %d" % (g, groups[g]) for g in sorted(groups, key=int))))
    if missing:
        print()
        print("No result for %d case%s: %s" % (
            len(missing), "" if len(missing) == 1 else "s",
            " ".join(missing) if len(missing) <= 40 else
            " ".join(missing[:20]) + " ... " + " ".join(missing[-5:])))

    if changes:
        print()
        print("Differences from %s (%d case%s; expected -> got):" % (
            args.expected, len(changes), "" if len(changes) == 1 else "s"))
        shown = changes if len(changes) <= 60 else changes[:50]
        for cid, kind, exp, got in shown:
            print("  %-11s %-8s %s -> %s" % (kind, cid, brief(exp), brief(got)))
        if len(shown) < len(changes):
            print("  ... and %d more" % (len(changes) - len(shown)))
        if not args.update_expected and not missing and not problems:
            print("If the change is intended, accept it with: scripts/autobahn --update-expected")

    if args.update_expected:
        if missing:
            problems.append("not updating %s: %d cases have no result" % (
                args.expected, len(missing)))
        else:
            merged = {} if full else dict(expected)
            for cid in cases:
                r = results[cid]
                merged[cid] = {"behavior": r.get("behavior"),
                               "behaviorClose": r.get("behaviorClose")}
            write_text(args.expected, format_expected(merged))
            print()
            print("Wrote %s (%d cases)." % (args.expected, len(merged)))

    for p in problems:
        print("ERROR: %s" % p)
    if problems and counts["failed"] == 0:
        # Never print "0 failed" for a run that cannot be trusted.
        counts["failed"] = max(1, len(problems))
    print()
    print("%d passed, %d failed, %d skipped" % (
        counts["passed"], counts["failed"], counts["skipped"]))
    return 0 if counts["failed"] == 0 else 1


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd")

    s = sub.add_parser("spec", help="write the wstest fuzzingclient spec")
    s.add_argument("--template", required=True)
    s.add_argument("--outdir", required=True)
    s.add_argument("--url", required=True)
    s.add_argument("--cases", action="append", default=[],
                   help="case id or pattern such as 6.4.* (repeatable; default *)")
    s.add_argument("--out", required=True)
    s.add_argument("--cases-out", required=True)

    j = sub.add_parser("judge", help="judge a finished run")
    j.add_argument("--reports", required=True)
    j.add_argument("--cases-file", required=True)
    j.add_argument("--expected", required=True)
    j.add_argument("--update-expected", action="store_true")
    j.add_argument("--harness-failed", action="store_true",
                   help="scripts/autobahn saw wstest or the server fail")
    j.add_argument("--no-detail", dest="detail", action="store_false",
                   help="do not print per-case report details")

    args = p.parse_args(argv)
    if args.cmd == "spec":
        return cmd_spec(args)
    if args.cmd == "judge":
        return cmd_judge(args)
    p.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
