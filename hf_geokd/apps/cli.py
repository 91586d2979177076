"""The ``geokd`` command line: predict, paper, toy, report, demo, zoo, validate."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np

from ..capacity import CAPACITY_KINDS, critical_widths, quiet_capacity_warnings
from ..floors import DEFAULT_WIDTHS, default_widths
from ..paper import paper_checks
from ..predictor import FloorPredictor
from ..soft_floor import SHIPPED_SOFT_FLOOR
from ..stats import FeatureStats
from ..tables import markdown_table
from ..validate.protocols import PROTOCOLS

# Library messages name Python arguments; the command line names its flags instead.
FLAG_NAMES = {
    "allow_wider=True": "--allow-wider",
    "approximate=True": "--approximate",
    "overwrite=True": "--overwrite",
    "pass sae_id=": "pass --sae-id",
    "check sae_id": "check --sae-id",
    "Pass sae_id=": "Pass --sae-id",
    "checkpoint_dir ": "--out ",
    "widths must": "--widths must",
    "capacity_kind=": "--kind ",
    "Leave capacity_kind unset with floor_model": "Leave --kind unset with --floor-model soft",
    "drop floor_model": "drop --floor-model",
    "widths [": "--widths [",
    "seeds must": "--seeds must",
    "pass model= and dataset= to measure them": (
        "measure them first (in Python: FloorPredictor.from_sae(..., model=, dataset=) or "
        "hf_geokd.sae.measure_feature_stats, then save)"
    ),
}


def user_message(error: BaseException) -> str:
    """``error`` as one line that names flags rather than Python arguments."""
    message = " ".join(str(error).split()) or type(error).__name__
    for keyword, flag in FLAG_NAMES.items():
        message = message.replace(keyword, flag)
    return message


def check_folder_flag(value: str | None, flag: str) -> None:
    """Refuse an output folder flag that names an existing file, before any work is done."""
    if value is not None and Path(value).exists() and not Path(value).is_dir():
        raise NotADirectoryError(f"{flag} {value} is a file: pass a folder (new, or one this command wrote).")


def _from_sae(args: argparse.Namespace) -> FloorPredictor:
    return FloorPredictor.from_sae(args.source, args.sae_id, capacity_kind=args.kind or "paper",
                                   allow_wider=args.allow_wider, approximate=args.approximate)


def _check_plain_numbers(args: argparse.Namespace) -> None:
    """Name the flag when a plain number is out of range (before the library names its Python keyword)."""
    if args.n_features <= 0:
        raise ValueError(f"--n-features must be a positive count of alive features, got {args.n_features}.")
    if not 0 <= args.l0 <= args.n_features:
        raise ValueError(f"--l0 must lie in [0, --n-features = {args.n_features}], got {args.l0}.")
    if args.d_in is not None and args.d_in <= 0:
        raise ValueError(f"--d-in must be a positive hidden size, got {args.d_in}.")
    if not 0 <= args.zipf_exponent < math.inf:
        raise ValueError(
            f"--zipf-exponent must be a finite number >= 0 (contributions fall with rank; 0 is a flat spectrum), "
            f"got {args.zipf_exponent}."
        )


def load_predictor(args: argparse.Namespace):
    """A FloorPredictor from a saved predictor or stats folder, a Hub repo, or plain numbers (--n-features, --l0)."""
    if args.source is None:
        if args.n_features is None or args.l0 is None:
            raise ValueError("pass a folder or repo id, or both --n-features and --l0.")
        if args.zipf_exponent is None:
            raise ValueError(
                "plain numbers give F and L0 but no importance spectrum: pass --zipf-exponent BETA to assume "
                "contributions proportional to rank^-BETA, or point at measured stats."
            )
        _check_plain_numbers(args)
        ranks = np.arange(1, args.n_features + 1, dtype=np.float64)
        stats = FeatureStats.from_counts(
            args.n_features, args.l0, ranks ** (-args.zipf_exponent), d_in=args.d_in,
            metadata={"spectrum": f"assumed rank^-{args.zipf_exponent}"},
        )
        return FloorPredictor(stats, args.kind or "paper", allow_wider=args.allow_wider)
    if args.sae_id is not None:
        return _from_sae(args)
    try:
        with quiet_capacity_warnings() if args.kind else contextlib.nullcontext():  # --kind warns below instead
            saved = FloorPredictor.from_pretrained(args.source)
    except FileNotFoundError:  # not a predictor: an SAE folder or repo with stored statistics
        return _from_sae(args)
    return FloorPredictor(
        saved.stats, args.kind or saved.capacity_kind, saved.calibration, allow_wider=args.allow_wider,
        floor_model=saved.floor_model, kept_rule=saved.kept_rule, ablation=saved.ablation,
    )


def command_predict(args: argparse.Namespace) -> int:
    check_folder_flag(args.save, "--save")
    predictor = load_predictor(args)
    if args.kept_rule:  # one of the choices argparse checked
        predictor.kept_rule = args.kept_rule
    if args.floor_model is not None:  # a new predictor: the soft floor's own capacity is checked against --kind
        predictor = FloorPredictor(predictor.stats, args.kind or "paper", predictor.calibration,
                                   allow_wider=args.allow_wider, kept_rule=predictor.kept_rule,
                                   floor_model=None if args.floor_model == "eq2" else SHIPPED_SOFT_FLOOR,
                                   ablation=predictor.ablation)
    stats = predictor.stats
    widths = args.widths or default_widths(stats.d_in)
    if args.nats and predictor.ablation is None:  # before any output: a refusal costs nothing
        raise ValueError(NO_ABLATION)
    table = predictor.predict(widths)  # bad widths are refused before any output too
    print(predictor.summary())
    print(
        "d* per capacity kind: "
        + ", ".join(f"{k} {v:,.1f}" for k, v in critical_widths(stats.n_features, stats.alpha).items())
    )
    if stats.metadata.get("spectrum"):
        print(f"importance spectrum: {stats.metadata['spectrum']} (an assumption, not a measurement)")
    print()
    print(markdown_table(table))
    if args.nats:
        print_ablation_floors(predictor)
    if args.save:  # before the plot: a failed plot never costs the saved predictor
        predictor.save_pretrained(args.save, overwrite=args.overwrite)
        print(f"predictor saved to {args.save}")
    if args.plot:
        # Deferred: matplotlib loads only when a plot is asked for (`geokd predict` stays fast without one).
        from ..reporting.plots import plot_predicted_floors

        try:
            path = plot_predicted_floors(predictor.predict_every_kind(widths), args.plot)
        except ValueError as error:  # e.g. an image format matplotlib does not write
            raise ValueError(f"--plot {args.plot}: {error}") from error
        print(f"\nplot: {path}")
    return 0


NO_ABLATION = ("--nats: no ablation floors are stored with this predictor or SAE. Measure them with "
               "hf_geokd.sae.measure_ablation_floors(sae, model, held_out_blocks, widths) and save them beside the SAE "
               "(floors.save(sae_folder)) or with the predictor (FloorPredictor(..., ablation=floors)"
               ".save_pretrained(...)).")


def print_ablation_floors(predictor: FloorPredictor) -> None:
    """The floors in nats measured with no student (``--nats``): their own capacity and cut, which may differ from
    the predicted-floor table's."""
    floors = predictor.ablation
    kind = floors.capacity_kind if isinstance(floors.capacity_kind, str) else "fitted"
    print(f"\nFloors in nats with no student trained (ablation floor: T^2 KL per token, T = {floors.temperature}, "
          f"{kind} capacity, {floors.kept_rule} cut, {floors.n_tokens:,} held-out positions; splicing the SAE in "
          f"costs {floors.splice_kl:.4g} nats):\n")
    print(markdown_table(floors.table()))


def command_paper(args: argparse.Namespace) -> int:
    check_folder_flag(args.out, "--out")
    checks = paper_checks()
    for section, rows in checks.groupby("section", sort=False):
        print(f"\n## {section}\n")
        print(markdown_table(rows.drop(columns="section")))
    counts = checks["status"].value_counts()
    print("\n" + ", ".join(f"{n} {status}" for status, n in counts.items()))
    if args.out:
        # Deferred: the report pulls matplotlib and jinja, not needed to print the checks.
        from ..reporting.reports import write_paper_report

        print(f"report: {write_paper_report(checks, args.out)}")
    return 0


def command_toy(args: argparse.Namespace) -> int:
    # Deferred (here and in the commands below): each command loads only its own subsystem, so that
    # `geokd predict` and `geokd paper` start without importing the toy sweep, transformers or sae-lens.
    from ..toy import ToySweepConfig, run_toy_sweep
    from ..toy.report import write_toy_report

    check_folder_flag(args.out, "--out")
    overrides = {key: value for key, value in (("seeds", args.seeds), ("target", args.target)) if value is not None}
    config = getattr(ToySweepConfig, args.preset)(**overrides)
    print(f"toy sweep: {config.n_configurations} configurations x {config.seeds} seeds ({args.preset} preset)")
    results = run_toy_sweep(config, checkpoint_dir=args.out)
    report = write_toy_report(results, args.out)
    print((Path(args.out) / "accuracy.csv").read_text())
    print(f"report: {report}")
    return 0


def command_report(args: argparse.Namespace) -> int:
    from ..toy.report import load_toy_results, write_toy_report  # Deferred: see command_toy

    check_folder_flag(args.out, "--out")
    print(f"report: {write_toy_report(load_toy_results(args.folder), args.out or args.folder)}")
    return 0


def command_demo(args: argparse.Namespace) -> int:
    from .demo import demo_config, run_demo  # Deferred: see command_toy

    check_folder_flag(args.out, "--out")
    print(f"report: {run_demo(args.out, demo_config(args.preset))}")
    return 0


ZOO_UNFINISHED = 3  # the exit status of `geokd zoo` stopped by --max-minutes: run the same command again


def command_zoo(args: argparse.Namespace) -> int:
    from .zoo import DeadlineReached, load_zoo, run_zoo, select_teachers, zoo_status  # Deferred: see command_toy

    check_folder_flag(args.out, "--out")
    if args.max_minutes is not None and not args.max_minutes > 0:
        raise ValueError(f"--max-minutes must be > 0, got {args.max_minutes}.")
    if args.teachers and args.preset != "shipped":
        raise ValueError(f"--teachers {args.teachers} and --preset {args.preset}: pass one of them (a YAML file, or "
                         "a zoo shipped with hf-geokd).")
    teachers = load_zoo(args.teachers, args.preset)
    if args.status:
        if not Path(args.out).is_dir():
            raise FileNotFoundError(f"--out {args.out} holds no zoo yet: pass the folder of a `geokd zoo` run.")
        print(markdown_table(zoo_status(args.out, select_teachers(teachers, args.only))))
        return 0
    try:
        report = run_zoo(args.out, teachers, stage=args.stage, only=args.only, device=args.device,
                         max_minutes=args.max_minutes, allow_uncommitted=args.allow_uncommitted,
                         show_losses=args.show_losses)
    except DeadlineReached as stop:
        print(f"geokd zoo: {stop}; everything finished is saved: run the same command again to continue.")
        return ZOO_UNFINISHED
    print(f"report: {report}" if report else "no teacher is scored yet: run --stage score once the registrations "
          "are committed.")
    return 0


VALIDATE_FLAGS = {
    "stats=": "--stats", "floor=": "--floor", "allow_rising=True": "--allow-rising",
    "(allow_rising)": "(--allow-rising)", "soft_fit=None": "--no-shipped-soft-floor",
    "soft_in_sample=True": "--in-sample-soft-floor",
}


def _validate_flags(error: Exception) -> Exception:
    """``error`` with the validation library's Python keywords replaced by ``geokd validate``'s flags."""
    message = str(error)
    for keyword, flag in VALIDATE_FLAGS.items():
        message = message.replace(keyword, flag)
    return type(error)(message) if isinstance(error, (ValueError, OSError)) else error


def _validate_out(args: argparse.Namespace) -> Path:
    """Where `geokd validate` writes; refuses a folder that already holds a validation unless --overwrite."""
    results = Path(args.results)
    out = Path(args.out or (results / "validation" if results.is_dir() else results.with_suffix("")))
    if (out / "scores.csv").is_file() and not args.overwrite:
        raise ValueError(f"{out} already holds a validation (scores.csv): pass --out to write elsewhere, or "
                         "--overwrite to replace it.")
    return out


def command_validate(args: argparse.Namespace) -> int:
    # Deferred: the harness loads evaluate, scipy and the toy model (see command_toy).
    from ..soft_floor import SHIPPED_SOFT_FLOOR
    from ..validate import load_observations, score_predictors, write_validation_report
    from ..validate.harness import in_sample_configurations

    # Deferred: as above
    from ..validate.protocols import protocol_problem
    from ..validate.report import protocol_tables

    check_folder_flag(args.out, "--out")
    out = _validate_out(args)  # before the work: a refusal costs nothing
    try:
        observations = load_observations(args.results, args.stats, args.floor, allow_rising=args.allow_rising)
    except (ValueError, OSError) as error:
        raise _validate_flags(error) from error
    if args.protocols:
        for protocol in args.protocols:  # asked for by name: each must have something to score
            problem = protocol_problem(observations.table, protocol, observations.units,
                                       shared_fits=observations.teacher_relative)
            if problem:
                raise ValueError(f"--protocols {protocol}: {problem}.")
    zero_shot = protocol_problem(observations.table, "zero-shot", observations.units,
                                 shared_fits=observations.teacher_relative) is None  # Eq. 2's units, or nats measured
    protocols = tuple(args.protocols) if args.protocols else tuple(
        p for p in PROTOCOLS if (p != "zero-shot" or zero_shot)
        and (observations.units == "energy" or p != "leave-configuration-out"))
    shipped = None if args.no_shipped_soft_floor else SHIPPED_SOFT_FLOOR
    in_sample = in_sample_configurations(observations, shipped)
    if in_sample and not args.in_sample_soft_floor:
        shipped = None
        observations.notes.append(
            f"the soft floor shipped with hf-geokd is not scored: it was fitted on {len(in_sample)} of these "
            "configurations (the paper's toy grid), so its scores here would be in-sample (--in-sample-soft-floor "
            "scores it, labelled in-sample and ranked last)")
    try:
        results = score_predictors(observations, protocols, soft_fit=shipped, soft_label="shipped shape",
                                   soft_in_sample=args.in_sample_soft_floor)
    except ValueError as error:
        raise _validate_flags(error) from error
    report = write_validation_report(results, out, args.title or f"Held-out floor predictions: {args.results}")
    for note in (*observations.notes, *results.notes):
        print(f"note: {note}")
    for reason in results.skipped.values():
        print(f"not scored: {reason}")
    for protocol, table in protocol_tables(results).items():
        print(f"\n{protocol}\n" + markdown_table(table[["predictor", "points", "median_accuracy_pct", "mare_pct",
                                                           "r2", "spearman_rho"]]))
    print(f"\nreport: {report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="geokd", description="Geometric limits of knowledge distillation.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('hf-geokd')}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="predicted floors at student widths")
    predict.add_argument("source", nargs="?", help="a predictor, SAE or FeatureStats folder, or a Hub repo id")
    predict.add_argument("--sae-id", help="the SAE's folder inside an SAE repo (e.g. gpt_neox.layers.12)")
    predict.add_argument("--widths", type=int, nargs="+", help=f"student widths (default {DEFAULT_WIDTHS} up to d_T)")
    predict.add_argument(
        "--kind", choices=CAPACITY_KINDS, help="capacity model g(alpha) (default: the predictor's, else paper)"
    )
    predict.add_argument(
        "--floor-model", choices=("eq2", "soft"),
        help="eq2: the paper's Eq. 2; soft: the soft floor shipped with hf-geokd, Eq. 2 beside it (default: the "
             "predictor's, else eq2)",
    )
    predict.add_argument("--n-features", type=int, help="F, alive features (with --l0, instead of a source)")
    predict.add_argument("--l0", type=float, help="mean active features per token")
    predict.add_argument("--d-in", type=int, help="teacher hidden size (widths above it are refused)")
    predict.add_argument("--zipf-exponent", type=float, help="assume contributions proportional to rank^-BETA")
    predict.add_argument("--allow-wider", action="store_true", help="accept widths above the teacher's")
    predict.add_argument(
        "--approximate", action="store_true",
        help="an SAE with no stored statistics: approximate them from its sparsity.safetensors (no forward pass)",
    )
    predict.add_argument("--plot", help="write a PNG of floor vs width for every capacity kind")
    predict.add_argument("--save", help="save the predictor to this folder (refuses to replace other files)")
    predict.add_argument("--overwrite", action="store_true", help="let --save replace files that are not a predictor's")
    predict.add_argument("--kept-rule", choices=("floor", "continuous"),
                         help="where Eq. 2 cuts the ranked spectrum: floor(d_S g) (the paper's, default) or the "
                              "real-valued rank d_S g (continuous: no jump of a whole feature)")
    predict.add_argument("--nats", action="store_true",
                         help="also print the floors in nats measured with no student (the ablation floors stored "
                              "with the predictor or beside the SAE)")
    predict.set_defaults(func=command_predict)

    paper = commands.add_parser("paper", help="recompute the paper's derived numbers beside its printed ones")
    paper.add_argument("--out", help="also write report.md and figures to this folder")
    paper.set_defaults(func=command_paper)

    toy = commands.add_parser("toy", help="the toy-model sweep of the paper's section 4 (resumes from --out)")
    toy.add_argument(
        "--preset", choices=("paper", "smoke", "confirm"), default="paper",
        help="paper: 48 configurations x 20 seeds; smoke: 8 configurations x 3 seeds, a few minutes on CPU (about 3 "
             "on 2 busy cores), not seconds; confirm: an independent grid for held-out scoring"
    )
    toy.add_argument("--seeds", type=int, help="override the preset's number of seeds")
    toy.add_argument("--target", choices=("teacher", "truth"), help="distil from the teacher (default) or train on x")
    toy.add_argument("--out", default="outputs/toy", help="folder for results, figures, report and the checkpoint")
    toy.set_defaults(func=command_toy)

    report = commands.add_parser("report", help="rewrite a toy sweep's report, tables and figures from its results")
    report.add_argument("folder", help="a folder written by `geokd toy` (config.json + models.parquet)")
    report.add_argument("--out", help="where to write (default: the same folder)")
    report.set_defaults(func=command_report)

    demo = commands.add_parser("demo", help="the embedded end-to-end demo (offline, CPU)")
    demo.add_argument("--out", default="outputs/demo", help="folder for the report, figures and models (reused)")
    demo.add_argument("--preset", choices=("quick", "full", "long", "gpu"), default="quick",
                      help="quick: about 7 min on 2 CPU cores (10 with the install); full: under an hour; long: every "
                           "student to the convergence rule (~75 min); gpu: students up to 3,000 steps")
    demo.set_defaults(func=command_demo)

    zoo = commands.add_parser("zoo", help="the demo's pipeline on many teachers, every prediction registered first")
    zoo.add_argument("--out", default="outputs/zoo", help="folder of the zoo (one sub-folder per teacher; reused)")
    zoo.add_argument("--teachers", help="a zoo YAML file (default: the shipped zoo, or --preset)")
    zoo.add_argument("--preset", choices=("shipped", "smoke"), default="shipped",
                     help="shipped: the registered five-teacher zoo (hours on a CPU); smoke: two tiny teachers")
    zoo.add_argument("--stage", choices=("predict", "score", "all"), default="all",
                     help="predict: teachers, SAEs, ablation floors, calibration students and registration.json; "
                          "score: the other students and the scores (needs committed registrations); all (the "
                          "default): both")
    zoo.add_argument("--only", nargs="+", help="run only these teachers (names in the YAML file)")
    zoo.add_argument("--device", choices=("cpu", "cuda"), help="where to train and measure (default: cuda when "
                     "present)")
    zoo.add_argument("--max-minutes", type=float,
                     help=f"stop cleanly once this long has passed, checked at every student training step (the "
                          f"long stage; a teacher or SAE in training finishes first): a checkpoint is kept, the exit "
                          f"status is {ZOO_UNFINISHED}, and the next run continues")
    zoo.add_argument("--allow-uncommitted", action="store_true",
                     help="score registrations that version control does not hold yet (the reports say so)")
    zoo.add_argument("--status", action="store_true",
                     help="print where each teacher stands (stage, registration commit, students final, last "
                          "checkpoint, hours) and exit: no floor or loss of an unscored teacher is shown")
    zoo.add_argument("--show-losses", action="store_true",
                     help="print the score stage's student losses as they train (by default its log lines leave "
                          "them out, so that watching a registered run cannot reveal the floors it will score)")
    zoo.set_defaults(func=command_zoo)

    validate = commands.add_parser("validate", help="score floor predictors held out against measured floors")
    validate.add_argument("results", help="a `geokd toy` folder, a `geokd demo` folder, or a CSV of width,floor")
    validate.add_argument("--stats", help="the teacher's FeatureStats or SAE folder (with a CSV only: toy and demo "
                                          "folders read their own)")
    validate.add_argument("--protocols", nargs="+", choices=PROTOCOLS,
                          help="protocols to score (default: every one that applies; one named here that has nothing "
                               "to score is an error)")
    shipped = validate.add_mutually_exclusive_group()
    shipped.add_argument("--no-shipped-soft-floor", action="store_true",
                         help="leave out the soft floor shipped with hf-geokd (by default it is scored held out, and "
                              "left out on the paper's toy grid, which it was fitted on)")
    shipped.add_argument("--in-sample-soft-floor", action="store_true",
                         help="score the shipped soft floor on the paper's toy grid too, labelled in-sample and "
                              "ranked after every held-out predictor")
    validate.add_argument("--floor", choices=["observed", "asymptote"], default="observed",
                          help="a demo folder's student floors (demo folders only): the paper's tail mean (observed) "
                               "or the fitted asymptote L_inf (for runs that have not converged)")
    validate.add_argument("--allow-rising", action="store_true",
                          help="score floors that rise with width (refused by default: every predictor assumes they "
                               "fall; rising floors are unconverged or mislabelled runs)")
    validate.add_argument("--title", help="the report's title")
    validate.add_argument("--overwrite", action="store_true", help="replace a validation already in the folder")
    validate.add_argument("--out", help="folder for report.md, scores.csv, predictions.csv and plots "
                                        "(default: RESULTS/validation)")
    validate.set_defaults(func=command_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. A user error (bad value, missing or damaged file, unreachable repo) prints one line naming
    it and returns 2; Ctrl-C returns 130; ``--debug`` shows the traceback instead."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt as stop:  # a StopRequested says what it saved
        if args.debug:
            raise
        print(f"\ngeokd {args.command}: interrupted" + (f": {stop}" if str(stop) else ""), file=sys.stderr)
        return 130
    except (ValueError, OSError) as error:  # OSError: missing, misplaced or unreadable files, Hub errors
        if args.debug:
            raise
        print(f"geokd {args.command}: error: {user_message(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
