"""``creditrisk model challenger | promote | rollback | history``: the role changes, each
with its audit row in the ledger.

A role change is written to ``model_role_changes`` first, in a transaction; the registry is
changed next; the row is committed only if the registry change succeeded. When the ledger
cannot be reached the change is refused: no role changes without its audit row. A promotion
of a version that shadowed the champion is judged by the gate
(:func:`ledger.model_history.evaluate_gate`); ``--override --reason`` promotes past it.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from config.settings import Settings, get_settings
from ledger.cli import connect_or_exit, fail
from ledger.model_history import MIN_OVERRIDE_REASON, Criterion, RoleChange, record_change

if TYPE_CHECKING:
    from features.serving import ServingSpec
    from ledger.store import Ledger
    from onnx_models.registry import Registry

REGISTRY_OPTION = typer.Option(None, "--registry", help="Registry folder (default: "
                                                        "CREDITRISK_REGISTRY_DIR, onnx_models/).")
BY_OPTION = typer.Option(None, "--by", help="Who makes the change, for the audit row "
                                            "(default: the operating-system user).")
NEVER_SHADOWED = "no shadow decisions: run it as a challenger first"


def challenger_command(
    version: str = typer.Argument(..., help="The registered version to shadow the champion."),
    percent: float | None = typer.Option(None, "--percent", help="Share of applications it "
                                         "scores in the shadow, 0-100 (by application id)."),
    clear: bool = typer.Option(False, "--clear", help="Stop shadowing VERSION."),
    by: str | None = BY_OPTION,
    registry: Path | None = REGISTRY_OPTION,
) -> None:
    """Make VERSION a challenger at --percent P % (at most two), or --clear it.

    Refused for the champion, an unknown version, a third challenger, or a version that
    expects event fields the champion's events do not carry."""
    from onnx_models.challengers import challengers, clear_challenger, set_challenger
    from onnx_models.registry import RegistryError

    store = _registry(registry)
    if clear == (percent is not None):
        fail("give either --percent P (set VERSION as a challenger) or --clear (stop it)")
    try:
        before = {c.version: c for c in challengers(store)}
        if not clear:
            _check_event_contract(store, version)
    except RegistryError as error:
        fail(str(error))

    def undo() -> None:
        if version in before:
            set_challenger(store, version, before[version].percent)
        elif not clear:
            clear_challenger(store, version)

    who = _who(by)
    if clear:
        _audited(lambda connection: record_change(connection, "challenger_cleared", version, who,
                                                  previous_champion=store.live_version()),
                 lambda: clear_challenger(store, version), undo)
        typer.echo(f"Model {version} no longer shadows the champion (audit row by {who}).")
        return
    assert percent is not None
    _audited(lambda connection: record_change(connection, "challenger_set", version, who,
                                              previous_champion=store.live_version(),
                                              percent=percent),
             lambda: set_challenger(store, version, percent), undo)
    typer.echo(f"Model {version} is a challenger: it shadows {percent:g} % of the applications "
               f"of champion {store.live_version()} (audit row by {who}).")


def promote_command(
    version: str = typer.Argument(..., help="The version to make champion (live)."),
    override: bool = typer.Option(False, "--override", help="Promote even though the gate "
                                  "refuses (needs --reason)."),
    reason: str | None = typer.Option(None, "--reason", help="Why (required with --override: "
                                      f"at least {MIN_OVERRIDE_REASON} characters)."),
    by: str | None = BY_OPTION,
    registry: Path | None = REGISTRY_OPTION,
) -> None:
    """Make VERSION the champion once the promotion gate passes.

    The gate compares VERSION's shadow decisions with the champion's on the same matured
    loans: enough matured loans, realised AUC not below the champion's by more than the
    tolerance, calibration error under the limit, swap-in bad rate not above the swap-out
    bad rate (CREDITRISK_PROMOTION_*). A refusal names each failing criterion; --override
    --reason TEXT promotes anyway. Refusals and promotions are both audit rows."""
    from onnx_models.challengers import challengers
    from onnx_models.registry import RegistryError

    store = _registry(registry)
    try:
        store.load(version)  # an unknown or broken version is refused before anything else
        champion = store.live_version()
        shares = {c.version: c.percent for c in challengers(store)}
    except RegistryError as error:
        fail(str(error))
    if version == champion:
        fail(f"{version} is already the champion")
    if override and len((reason or "").strip()) < MIN_OVERRIDE_REASON:
        fail(f"--override needs --reason TEXT of at least {MIN_OVERRIDE_REASON} characters: "
             "the reason is kept in the model history")
    settings, who = get_settings(), _who(by)
    with connect_or_exit(settings) as connection:
        criteria, refusal = _judge(connection, settings, store, champion, version)
    for criterion in criteria:
        typer.echo(f"  {'pass' if criterion.passed else 'FAIL'}  {criterion.explanation}")
    if refusal and not override:
        _refuse(settings, version, champion, who, criteria, refusal, reason)
    _audited(lambda connection: record_change(
                 connection, "promoted_by_override" if refusal else "promoted", version, who,
                 previous_champion=champion, criteria=criteria, reason=(reason or "").strip()),
             lambda: _make_champion(store, version),
             lambda: _restore(store, champion, version, shares.get(version)), settings)
    note = f" past the gate ({refusal})" if refusal else ""
    typer.echo(f"Model {version} is now the champion (live){note}; previous champion "
               f"{champion or 'none'} (audit row by {who}).")


def rollback_command(
    reason: str = typer.Option(..., "--reason", help="Why (at least "
                               f"{MIN_OVERRIDE_REASON} characters; kept in the history)."),
    by: str | None = BY_OPTION,
    registry: Path | None = REGISTRY_OPTION,
) -> None:
    """Return to the previous champion, without the gate (a reason is required).

    The previous champion is the one the history's latest promotion or rollback replaced."""
    from ledger.model_history import last_champion_change
    from onnx_models.challengers import challengers
    from onnx_models.registry import RegistryError

    if len(reason.strip()) < MIN_OVERRIDE_REASON:
        fail(f"--reason must be at least {MIN_OVERRIDE_REASON} characters")
    store, settings, who = _registry(registry), get_settings(), _who(by)
    try:
        champion = store.live_version()
        shares = {c.version: c.percent for c in challengers(store)}
    except RegistryError as error:
        fail(str(error))
    with connect_or_exit(settings) as connection:
        last = last_champion_change(connection)
    if last is None or last.previous_champion is None:
        fail("the model history holds no promotion with a previous champion to return to; "
             "promote the version you want with `creditrisk model promote VERSION`")
    if last.model_version != champion:
        fail(f"the champion is {champion}, not {last.model_version} as the history's latest "
             "promotion says (it was changed outside these commands); promote the version you "
             "want with `creditrisk model promote VERSION --override --reason TEXT`")
    target = last.previous_champion
    _audited(lambda connection: record_change(connection, "rolled_back", target, who,
                                              previous_champion=champion, reason=reason.strip()),
             lambda: _make_champion(store, target),
             lambda: _restore(store, champion, target, shares.get(target)), settings)
    typer.echo(f"Model {target} is the champion again (rolled back from {champion}; audit row "
               f"by {who}).")


def history_command(
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many changes."),
    version: str | None = typer.Option(None, "--version", help="Only this version's changes."),
) -> None:
    """The models' role changes, newest first, with who, when, criteria and reason."""
    from ledger.model_history import history

    with connect_or_exit(get_settings()) as connection:
        changes = history(connection, limit, version)
    if not changes:
        typer.echo("No model role changes recorded yet.")
    for change in changes:
        for line in history_lines(change):
            typer.echo(line)


def history_lines(change: RoleChange) -> list[str]:
    """One change as the history prints it: a headline, then its criteria and reason."""
    detail = (f" at {change.percent:g} %"
              if change.action == "challenger_set" and change.percent is not None else "")
    champion = ""
    if change.previous_champion:
        champion = (f" (champion {change.previous_champion})"
                    if change.action.startswith("challenger") else
                    f" (champion was {change.previous_champion})")
    lines = [f"{change.changed_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC  #{change.change_id}  "
             f"{change.action:<20} {change.model_version}{detail}{champion}  by "
             f"{change.changed_by}"]
    for criterion in change.criteria:
        mark = "pass" if criterion.get("passed") else "FAIL"
        lines.append(f"    {mark}  {criterion.get('name')}: {_number(criterion.get('value'))} "
                     f"(limit {_number(criterion.get('limit'))})")
    if change.reason:
        lines.append(f"    reason: {change.reason}")
    return lines


def _number(value: object) -> str:
    """A criterion's figure as stored: counts whole, rates and AUCs to four places."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.4f}"


def missing_event_fields(champion: ServingSpec, challenger: ServingSpec) -> list[str]:
    """The challenger's event fields the champion's events may not carry as it expects them
    (the worker validates events by the champion's contract and ignores other fields)."""
    carried = {item.name: item for item in champion.event_fields}
    lacking = []
    for wanted in challenger.event_fields:
        have = carried.get(wanted.name)
        if have is None:
            lacking.append(wanted.name)
        elif wanted.required and not have.required:
            lacking.append(f"{wanted.name} (optional on the champion's events)")
        elif not wanted.nullable and have.nullable:
            lacking.append(f"{wanted.name} (may be null on the champion's events)")
        elif wanted.check != have.check:
            lacking.append(f"{wanted.name} (checked as {have.check!r}, the challenger expects "
                           f"{wanted.check!r})")
    return lacking


def event_contract_problem(champion: ServingSpec, challenger: ServingSpec) -> str | None:
    """Why the worker could not shadow the champion with this challenger (None: it can).
    The fields it lacks first; then any other difference of event contract (the worker
    shadows only a challenger with the champion's); then feature views that cannot be read
    together with the champion's."""
    from stream.feature_union import union_spec

    lacking = missing_event_fields(champion, challenger)
    if lacking:
        return (f"expects event fields the champion's events do not carry: "
                f"{', '.join(lacking)}")
    if challenger.event_contract() != champion.event_contract():
        differing = sorted({entry[0] for entry in set(champion.event_contract())
                            ^ set(challenger.event_contract())})
        return (f"declares the event fields {', '.join(differing)} unlike the champion; the "
                "worker shadows only a challenger with the champion's event contract")
    try:
        union_spec(champion, [challenger])
    except ValueError as error:
        return f"has feature views that cannot be read with the champion's: {error}"
    return None


# ---- the steps -------------------------------------------------------------------------


def _registry(path: Path | None) -> Registry:
    from onnx_models.registry import Registry

    return Registry(path)


def _who(by: str | None) -> str:
    return (by or "").strip() or getpass.getuser()


def _check_event_contract(store: Registry, version: str) -> None:
    champion = store.live_version()
    if champion is None:
        fail("there is no champion yet: promote a version before setting challengers")
    problem = event_contract_problem(store.load(champion).card.serving_spec(),
                                     store.load(version).card.serving_spec())
    if problem:
        fail(f"{version} cannot shadow champion {champion}: it {problem}. A challenger scores "
             "the champion's events, so it must read the same application fields")


def _judge(connection: Ledger, settings: Settings, store: Registry, champion: str | None,
           version: str) -> tuple[list[Criterion], str]:
    """The gate's criteria of promoting ``version`` over ``champion`` and, when it refuses,
    why in one line ('' when it passes)."""
    from ledger.cards import RegistryCards
    from ledger.challenger import compare
    from ledger.model_history import GateLimits, evaluate_gate

    if champion is None:
        return [], ""  # the first champion: nothing to compare it with
    comparison = compare(connection, RegistryCards(store.root, settings.outcome_dataset),
                         champion, version)
    if comparison.shadowed == 0:
        return [], f"{version} has {NEVER_SHADOWED} (champion {champion})"
    criteria = evaluate_gate(comparison, GateLimits.from_settings(settings))
    failing = [criterion.name for criterion in criteria if not criterion.passed]
    return criteria, f"failing criteria: {', '.join(failing)}" if failing else ""


def _refuse(settings: Settings, version: str, champion: str | None, who: str,
            criteria: list[Criterion], refusal: str, reason: str | None) -> NoReturn:
    """Record the refused promotion and exit 1 with what failed."""
    _audited(lambda connection: record_change(connection, "promotion_refused", version, who,
                                              previous_champion=champion, criteria=criteria,
                                              reason=(reason or "").strip()),
             lambda: None, lambda: None, settings)
    fail(f"Promotion of {version} refused: {refusal}. The champion is unchanged; promote "
         "anyway with --override --reason TEXT.")


def _make_champion(store: Registry, version: str) -> None:
    """Promote ``version`` and stop it shadowing (a champion is no challenger)."""
    from onnx_models.challengers import challengers, clear_challenger

    store.promote(version)
    if any(c.version == version for c in challengers(store)):
        clear_challenger(store, version)


def _restore(store: Registry, champion: str | None, version: str, percent: float | None
             ) -> None:
    """Undo :func:`_make_champion` when its audit row could not be committed: the champion
    back, and ``version`` a challenger again at the share it had."""
    from onnx_models.challengers import set_challenger

    if champion is not None:
        store.promote(champion)
    if percent is not None:
        set_challenger(store, version, percent)


def _audited(record: Callable[[Ledger], object], change: Callable[[], object],
             undo: Callable[[], None], settings: Settings | None = None) -> None:
    """Write the audit row, make the registry change, and commit the row only if the change
    succeeded; a ledger that fails after the change has the change undone."""
    import psycopg

    from onnx_models.registry import RegistryError

    settings = settings or get_settings()
    try:
        connection = psycopg.connect(settings.postgres_conninfo())
    except psycopg.OperationalError as error:
        fail(f"the ledger's PostgreSQL at {settings.postgres_host}:{settings.postgres_port} is "
             f"not reachable or refused the login ({type(error).__name__}); nothing was "
             "changed: a role change needs its audit row. Is the stack up (`creditrisk stack "
             "up`), and are CREDITRISK_POSTGRES_* right?")
    changed = False
    try:
        with connection, connection.transaction():
            record(connection)
            change()
            changed = True
    except RegistryError as error:
        fail(str(error))
    except psycopg.Error as error:
        if changed:
            undo()
        fail(f"the audit row could not be written to the ledger ({type(error).__name__}: "
             f"{error}); nothing was changed")
