"""The benchmark scripts' shared command line: `make bench` hands one set of flags to all."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from bench.common import QUICK_RESULTS, RESULTS, bench_flags, bench_parser, parse, results_path


def import_parser() -> argparse.ArgumentParser:
    """A script's parser as bench/imports.py builds it, restating two common flags."""
    parser = bench_parser("CSV import")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--baseline", default="", help="a commit to measure in the same run")
    return parser


def test_common_flags_are_understood_by_every_script():
    args = parse(import_parser(), ["--backends", "sqlite", "--duration", "3", "--baseline", "abc"])
    assert (args.backends, args.duration, args.baseline) == ("sqlite", 3, "abc")


def test_a_flag_of_another_bench_script_is_accepted_with_its_value():
    args = parse(import_parser(), ["--sizes", "10000,100000", "--rows", "5", "--write",
                                   "--variants=metrics", "--pg-large", "0"])  # fmt: skip
    assert args.rows == 5


def test_a_flag_no_bench_script_has_is_an_error():
    with pytest.raises(SystemExit):
        parse(import_parser(), ["--sizez", "10000"])


def test_a_stray_value_is_an_error():
    with pytest.raises(SystemExit):
        parse(import_parser(), ["--rows", "5", "7"])


def test_a_prefix_of_a_flag_is_not_taken_for_it():
    with pytest.raises(SystemExit):
        parse(import_parser(), ["--row", "5"])


def test_quick_replaces_the_defaults_it_names_and_a_flag_given_still_wins():
    quick = {"rows": 2_000, "duration": 2}
    assert parse(import_parser(), ["--quick"], quick=quick).rows == 2_000
    assert parse(import_parser(), ["--quick", "--rows", "50"], quick=quick).rows == 50
    assert parse(import_parser(), [], quick=quick).rows == 100_000


def test_a_quick_run_writes_beside_the_full_figures_unless_told_where():
    assert results_path(parse(bench_parser("x"), [])) == RESULTS
    assert results_path(parse(bench_parser("x"), ["--quick"])) == QUICK_RESULTS
    told = parse(bench_parser("x"), ["--quick", "--out", "elsewhere.md"])
    assert results_path(told) == Path("elsewhere.md")


def test_the_flags_of_every_bench_script_are_found_in_their_source():
    assert {"--sizes", "--rows", "--events", "--write", "--pg-large", "--changes"} <= bench_flags()
