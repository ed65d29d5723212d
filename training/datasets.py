"""Dataset configs: which column is what in a loan file, and how to read it.

Built-ins live as TOML files in ``training/dataset_configs/`` (``generated``,
``lending_club``, ``home_credit``); any other CSV is described by a TOML file of the same
format (see ``training/README.md``). ``load_clean_labelled`` is the one call the training
pipeline makes: read, clean, label.
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fairness.spec import MonitoringConfigError, MonitoringSpec
from features.serving import EventField, NumericBand, ServingSpec, lending_club_serving
from features.views import BUREAU_VIEW, Aggregation, FeatureView, FieldSpec

if TYPE_CHECKING:
    import pandas as pd

    from training.cleaning import CleaningReport
    from training.label import LabelReport

BUILT_IN_CONFIG_DIR = Path(__file__).resolve().parent / "dataset_configs"
FEATURE_SETS = ("lending_club", "generic")
FEATURE_TYPES = ("numeric", "categorical")
_HEADER_SEARCH_LINES = 10


@dataclass(frozen=True)
class CleaningLimits:
    """Bounds beyond which a Lending Club value is treated as an outlier."""

    annual_inc_max: float = 5_000_000.0
    dti_max: float = 100.0
    revol_util_max: float = 150.0


@dataclass(frozen=True)
class DatasetConfig:
    """How to read, clean and label one kind of loan file.

    ``feature_set="lending_club"`` maps the file onto the canonical loan frame and uses the
    shared feature definitions (the only ones the real-time service can serve);
    ``"generic"`` uses the columns listed in ``features`` as they are.
    """

    name: str
    id_column: str
    target_column: str
    bad_values: tuple[str, ...]
    good_values: tuple[str, ...]
    excluded_values: tuple[str, ...] = ()
    feature_set: str = "generic"
    features: dict[str, str] = field(default_factory=dict)
    customer_id_column: str | None = None
    date_column: str | None = None
    exclude_columns: tuple[str, ...] = ()
    # Columns the built-in post-origination list (or an inherited leakage_columns) refuses
    # that this lender does know when the application arrives (e.g. funded_amnt when the
    # amount is fixed up front); recorded in model.json.
    known_at_application: tuple[str, ...] = ()
    leakage_columns: tuple[str, ...] = ()
    pricing_columns: tuple[str, ...] = ()
    allow_pricing: bool = False
    missing_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cleaning: CleaningLimits = field(default_factory=CleaningLimits)
    description: str = ""
    source: str = "<in code>"
    # Serving: feature views read from the feature store (by customer id) instead of the
    # application event, plain-language wording per feature, console grouping columns.
    views: tuple[FeatureView, ...] = ()
    feature_descriptions: dict[str, tuple[str, str]] = field(default_factory=dict)
    similar_by: tuple[str, ...] = ()
    similar_band: NumericBand | None = None
    amount_field: str | None = None
    # Free text the application event may carry besides its fields (a job title): the worker
    # checks its type and drops it; never a feature.
    free_text_fields: tuple[str, ...] = ()
    # Neutral names of fields ("Total income"), shown with a customer's own value.
    field_labels: dict[str, str] = field(default_factory=dict)
    # Protected characteristics watched for adverse impact ([monitoring]): carried on the
    # event, kept beside the training rows for the report, never a feature.
    monitoring: MonitoringSpec = field(default_factory=MonitoringSpec)

    def __post_init__(self) -> None:
        self._check_parameters()

    def _check_parameters(self) -> None:
        where = f"dataset config {self.name!r} ({self.source})"
        for name in ("name", "id_column", "target_column"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{where}: '{name}' must be a non-empty string, got {value!r}.")
        if self.feature_set not in FEATURE_SETS:
            raise ValueError(f"{where}: feature_set {self.feature_set!r} is unknown; "
                             f"use one of {', '.join(FEATURE_SETS)}.")
        if not self.bad_values:
            raise ValueError(f"{where}: [target] bad_values is empty; list the target values "
                             "that mean a bad loan (e.g. bad_values = [\"1\"]).")
        if not self.good_values:
            raise ValueError(f"{where}: [target] good_values is empty; list the target values "
                             "that mean a good loan (e.g. good_values = [\"0\"]).")
        overlap = set(self.bad_values) & (set(self.good_values) | set(self.excluded_values))
        if overlap or set(self.good_values) & set(self.excluded_values):
            shared = sorted(overlap or set(self.good_values) & set(self.excluded_values))
            raise ValueError(f"{where}: target values {shared} appear in more than one of "
                             "bad_values / good_values / excluded_values; each value needs one meaning.")
        for column, kind in self.features.items():
            if kind not in FEATURE_TYPES:
                raise ValueError(f"{where}: feature {column!r} has type {kind!r}; "
                                 f"use one of {', '.join(FEATURE_TYPES)}.")
        if self.feature_set == "generic" and not self.features:
            raise ValueError(f"{where}: feature_set 'generic' needs a [features] table naming "
                             "the columns to use and their type (numeric or categorical).")
        special = {self.id_column, self.target_column}
        clash = sorted(special & set(self.features))
        if clash:
            raise ValueError(f"{where}: {clash} cannot be both a feature and the id/target column.")
        excluded = sorted(set(self.exclude_columns) & (set(self.features) | special))
        if excluded:
            raise ValueError(f"{where}: {excluded} are listed in exclude_columns and also used "
                             "(as a feature, the id or the target); remove them from one list.")
        if not isinstance(self.allow_pricing, bool):
            raise TypeError(f"{where}: allow_pricing must be true or false, got {self.allow_pricing!r}.")
        if self.views and not self.customer_id_column and not self.is_lending_club:
            raise ValueError(f"{where}: [[views]] are read by customer id; set "
                             "customer_id_column (the column the views' entity_column matches).")
        try:
            spec = self.serving_spec()
        except ValueError as error:
            raise ValueError(f"{where}: {error}.") from None
        self._check_monitoring(where, spec)

    def _check_monitoring(self, where: str, spec: ServingSpec) -> None:
        """A monitored attribute is never a model input nor the id, customer, date or target."""
        used = {**dict.fromkeys(self.model_features, "a feature"),
                **{item.name: "an event field the model reads" for item in spec.event_fields},
                **{name: "a feature-store field" for view in self.views
                   for name in view.field_names},
                self.id_column: "the id column", self.target_column: "the target column",
                **({self.customer_id_column: "the customer id column"}
                   if self.customer_id_column else {}),
                **({self.date_column: "the date column"} if self.date_column else {})}
        for attribute in self.monitoring.attributes:
            if attribute.field in used:
                raise ValueError(
                    f"{where}: monitoring attribute {attribute.name!r} (field "
                    f"{attribute.field!r}) is also {used[attribute.field]}; a protected "
                    "characteristic is monitored, never used to score. Remove "
                    f"{attribute.field!r} from [features] (or from [monitoring]).")

    def serving_spec(self) -> ServingSpec:
        """What the worker needs to serve a model of this dataset (recorded in model.json)."""
        if self.is_lending_club:
            return lending_club_serving(self.views or (BUREAU_VIEW,),
                                        self.similar_by or ("purpose",))
        from_views = {name for view in self.views for name in view.field_names}
        fields = tuple(
            EventField(name, "numeric" if kind == "numeric" else "categorical",
                       "number" if kind == "numeric" else "category",
                       missing_values=self.missing_values.get(name, ()))
            for name, kind in self.features.items() if name not in from_views)
        labels = {name: text for name, (text, _direction) in self.feature_descriptions.items()}
        return ServingSpec(fields, self.views, date_field=None, similar_by=self.similar_by,
                           field_labels={**labels, **self.field_labels},
                           similar_band=self.similar_band, amount_field=self.amount_field,
                           free_text_fields=self.free_text_fields)

    @property
    def model_features(self) -> dict[str, str]:
        """The feature columns and types: the listed ones plus every view field (numeric)."""
        extra = {name: "numeric" for view in self.views for name in view.field_names
                 if name not in self.features}
        return {**self.features, **extra} if not self.is_lending_club else dict(self.features)

    @property
    def is_lending_club(self) -> bool:
        return self.feature_set == "lending_club"


def built_in_dataset_names() -> list[str]:
    """Names accepted by ``load_dataset_config`` besides a TOML path."""
    return sorted(p.stem for p in BUILT_IN_CONFIG_DIR.glob("*.toml") if p.stem != "example")


def load_dataset_config(name_or_path: str | Path) -> DatasetConfig:
    """A built-in config by name (``generated``, ``lending_club``, ``home_credit``) or a TOML file."""
    document, source = _read_toml_with_base(str(name_or_path), seen=())
    return _config_from_document(document, source)


def _locate(name_or_path: str) -> Path:
    built_in = BUILT_IN_CONFIG_DIR / f"{name_or_path}.toml"
    if "/" not in name_or_path and not name_or_path.endswith(".toml") and built_in.is_file():
        return built_in
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    raise FileNotFoundError(
        f"No dataset config {name_or_path!r}: it is neither a built-in "
        f"({', '.join(built_in_dataset_names())}) nor an existing TOML file.")


def _read_toml_with_base(name_or_path: str, seen: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    path = _locate(name_or_path)
    if str(path) in seen:
        raise ValueError(f"Dataset config {path}: 'base' chain loops ({' -> '.join(seen)}).")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"Dataset config {path} is not valid TOML: {error}.") from error
    base_name = document.pop("base", None)
    if base_name is None:
        return document, str(path)
    base, _ = _read_toml_with_base(str(base_name), (*seen, str(path)))
    for key, value in document.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base, str(path)


_TOP_LEVEL_KEYS = {"name", "description", "feature_set", "id_column", "customer_id_column",
                   "date_column", "exclude_columns", "known_at_application", "leakage_columns",
                   "pricing_columns", "allow_pricing", "target", "features", "missing_values",
                   "cleaning", "views", "serving", "monitoring"}
_VIEW_KEYS = {"name", "source", "entity_column", "event_time_column", "max_age_days",
              "ttl_days", "fields", "nullable", "aggregations", "description"}


def _config_from_document(document: dict[str, Any], source: str) -> DatasetConfig:
    unknown = sorted(set(document) - _TOP_LEVEL_KEYS)
    if unknown:
        raise ValueError(f"Dataset config {source}: unknown keys {unknown}; "
                         f"allowed: {sorted(_TOP_LEVEL_KEYS)}.")
    target = document.get("target")
    if not isinstance(target, dict) or not target.get("column"):
        raise ValueError(f"Dataset config {source}: missing [target] table with 'column' "
                         "(the column holding the outcome) and 'bad_values'/'good_values'.")
    features, descriptions, labels = _features(document.get("features", {}), source)
    serving = document.get("serving", {})
    unknown_serving = sorted(set(serving) - {"similar_by", "similar_band", "amount_field",
                                             "free_text_fields"})
    if unknown_serving:
        raise ValueError(f"Dataset config {source}: unknown keys {unknown_serving} in [serving]; "
                         "allowed: similar_by, similar_band, amount_field, free_text_fields.")
    try:
        monitoring = MonitoringSpec.from_table(document.get("monitoring"),
                                               f"Dataset config {source}")
    except MonitoringConfigError as error:
        raise ValueError(str(error)) from None
    limits = document.get("cleaning", {})
    try:
        cleaning = CleaningLimits(**{k: float(v) for k, v in limits.items()})
    except TypeError as error:
        raise ValueError(f"Dataset config {source}: [cleaning] {error}; allowed keys: "
                         "annual_inc_max, dti_max, revol_util_max.") from error
    return DatasetConfig(
        name=document.get("name") or Path(source).stem,
        description=document.get("description", ""),
        feature_set=document.get("feature_set", "generic"),
        id_column=document.get("id_column", ""),
        customer_id_column=document.get("customer_id_column"),
        date_column=document.get("date_column"),
        target_column=target["column"],
        bad_values=_strings(target.get("bad_values", []), "target.bad_values", source),
        good_values=_strings(target.get("good_values", []), "target.good_values", source),
        excluded_values=_strings(target.get("excluded_values", []), "target.excluded_values", source),
        features=features,
        feature_descriptions={**_view_descriptions(document.get("views", []), source),
                              **descriptions},
        views=tuple(_view(entry, source) for entry in document.get("views", [])),
        similar_by=_strings(serving.get("similar_by", []), "serving.similar_by", source),
        similar_band=_similar_band(serving.get("similar_band"), source),
        amount_field=serving.get("amount_field"),
        free_text_fields=_strings(serving.get("free_text_fields", []),
                                  "serving.free_text_fields", source),
        field_labels={**_view_labels(document.get("views", [])), **labels},
        exclude_columns=_strings(document.get("exclude_columns", []), "exclude_columns", source),
        known_at_application=_strings(document.get("known_at_application", []),
                                      "known_at_application", source),
        leakage_columns=_strings(document.get("leakage_columns", []), "leakage_columns", source),
        pricing_columns=_strings(document.get("pricing_columns", []), "pricing_columns", source),
        allow_pricing=document.get("allow_pricing", False),
        missing_values={str(column): _strings(values, f"missing_values.{column}", source)
                        for column, values in document.get("missing_values", {}).items()},
        cleaning=cleaning,
        monitoring=monitoring,
        source=source,
    )


def _similar_band(entry: object, source: str) -> NumericBand | None:
    """``similar_band = { field = "annual_inc", edges = [0, 30000, 50000] }``."""
    if entry is None:
        return None
    try:
        if not isinstance(entry, dict):
            raise TypeError(f"got {entry!r}")
        return NumericBand(str(entry["field"]), tuple(float(edge) for edge in entry["edges"]))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"Dataset config {source}: [serving] similar_band needs 'field' (a "
                         f"numeric event field) and ascending 'edges' ({error}).") from None


def _features(table: dict[str, Any], source: str,
              ) -> tuple[dict[str, str], dict[str, tuple[str, str]], dict[str, str]]:
    """``NAME = "numeric"``, or ``NAME = {type = "numeric", label = "...", description =
    "...", direction = "higher_is_riskier"}`` for a feature explained in plain language."""
    kinds: dict[str, str] = {}
    descriptions: dict[str, tuple[str, str]] = {}
    labels: dict[str, str] = {}
    for name, value in table.items():
        if isinstance(value, dict):
            unknown = sorted(set(value) - {"type", "label", "description", "direction"})
            if unknown or "type" not in value:
                raise ValueError(f"Dataset config {source}: feature {name!r} needs 'type' and "
                                 "may have 'label', 'description' and 'direction' "
                                 f"(got {sorted(value)}).")
            kinds[str(name)] = value["type"]
            if "label" in value:
                labels[str(name)] = str(value["label"])
            if "description" in value or "direction" in value:
                descriptions[str(name)] = (str(value.get("description") or name),
                                           str(value.get("direction", "depends")))
        else:
            kinds[str(name)] = value
    return kinds, descriptions, labels


_DESCRIBED_KEYS = ("description", "direction")


def _view_descriptions(entries: object, source: str) -> dict[str, tuple[str, str]]:
    """Plain-language wording of aggregated view fields: ``NAME = { column = ..., function =
    ..., description = "...", direction = "higher_is_riskier" }``."""
    descriptions: dict[str, tuple[str, str]] = {}
    for entry in entries if isinstance(entries, list) else []:
        for name, spec in (entry.get("aggregations") or {}).items():
            if isinstance(spec, dict) and any(key in spec for key in _DESCRIBED_KEYS):
                descriptions[str(name)] = (str(spec.get("description") or name),
                                           str(spec.get("direction", "depends")))
    return descriptions


def _view_labels(entries: object) -> dict[str, str]:
    """Neutral names of aggregated view fields (``label = "..."``)."""
    return {str(name): str(spec["label"])
            for entry in (entries if isinstance(entries, list) else [])
            for name, spec in (entry.get("aggregations") or {}).items()
            if isinstance(spec, dict) and "label" in spec}


def _view(entry: dict[str, Any], source: str) -> FeatureView:
    """One ``[[views]]`` table: a feature view served from the feature store."""
    where = f"Dataset config {source}: view {entry.get('name', '?')!r}"
    unknown = sorted(set(entry) - _VIEW_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(_VIEW_KEYS)}.")
    if not entry.get("name") or not entry.get("source"):
        raise ValueError(f"{where}: 'name' and 'source' (the table file) are required.")
    nullable = set(_strings(entry.get("nullable", []), "views.nullable", source))
    try:
        aggregations = {}
        for name, spec in entry.get("aggregations", {}).items():
            unknown_keys = sorted(set(spec) - {"column", "function", "value", "label",
                                               *_DESCRIBED_KEYS})
            if unknown_keys:
                raise ValueError(f"aggregation {name!r} has unknown keys {unknown_keys}; allowed: "
                                 "column, function, value, label, description, direction")
            aggregations[str(name)] = Aggregation(str(spec["column"]), spec["function"],
                                                  spec.get("value"))
        fields = [FieldSpec(str(name), kind, nullable=str(name) in nullable)
                  for name, kind in entry.get("fields", {}).items()]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{where}: {error}.") from None
    bad_kinds = sorted(spec.name for spec in fields if spec.kind not in ("number", "date"))
    if bad_kinds:
        raise ValueError(f"{where}: fields {bad_kinds} need the kind 'number' or 'date'.")
    fields += [FieldSpec(name, "number", nullable=name in nullable) for name in aggregations]
    if not fields:
        raise ValueError(f"{where}: declare its [views.fields] or [views.aggregations].")
    return FeatureView(
        name=str(entry["name"]), entity="customer_id", fields=tuple(fields),
        max_age=timedelta(days=float(entry.get("max_age_days", 45))),
        ttl=timedelta(days=float(entry.get("ttl_days", 365))),
        source=str(entry["source"]), entity_column=str(entry.get("entity_column", "customer_id")),
        event_time_column=entry.get("event_time_column"), aggregations=aggregations,
        description=str(entry.get("description", "")))


def _strings(values: object, key: str, source: str) -> tuple[str, ...]:
    if not isinstance(values, list):
        raise ValueError(f"Dataset config {source}: '{key}' must be a list, got {values!r}.")
    return tuple(str(value) for value in values)


def _find_header(path: Path, id_column: str) -> tuple[int, list[str]]:
    """Lines to skip before the header (published Lending Club files open with a notice)."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        for index, row in enumerate(csv.reader(handle)):
            if index >= _HEADER_SEARCH_LINES:
                break
            if id_column in (cell.strip() for cell in row):
                return index, row
    raise ValueError(f"{path}: no header line naming the id column {id_column!r} in the first "
                     f"{_HEADER_SEARCH_LINES} lines; check the file or the dataset config's id_column.")


def load_raw(path: str | Path, config: DatasetConfig) -> pd.DataFrame:
    """The file, dirt included, ready for ``clean_loans``.

    The columns the cleaner parses are read as text exactly as written (nothing becomes NaN
    on the way in) so it sees and counts each placeholder and bad value; the others are
    read with pandas' type inference, which keeps a million-row file in a few GB less.
    """
    import pandas as pd

    from training.cleaning import columns_read_as_text

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Loan file {path} does not exist; pass the CSV with --data.")
    skip, header = _find_header(path, config.id_column)
    as_text = columns_read_as_text(config)
    frame = pd.read_csv(path, skiprows=skip, low_memory=False, on_bad_lines="warn",
                        dtype={column: str for column in header if column in as_text},
                        keep_default_na=False,
                        na_values={column: [""] for column in header if column not in as_text})
    # Files saved from pandas carry their index as an unnamed first column. Excluded columns
    # (e.g. protected characteristics) go now, so nothing downstream can use them; a monitored
    # attribute's column stays beside the rows for the report's fairness section only (the
    # config refuses it as a feature).
    monitored = set(config.monitoring.fields)
    dropped = [c for c in frame.columns if str(c).startswith("Unnamed: ")
               or (c in set(config.exclude_columns) and c not in monitored)]
    frame = frame.drop(columns=dropped)
    missing = [c for c in (config.id_column, config.target_column) if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: columns {missing} named by dataset config {config.name!r} are "
                         f"not in the file (it has {len(frame.columns)} columns, e.g. "
                         f"{list(frame.columns[:8])}).")
    return frame


def load_clean_labelled(path: str | Path, config: DatasetConfig
                        ) -> tuple[pd.DataFrame, CleaningReport, LabelReport]:
    """Read, clean and label a loan file: the frame to build features from, and both reports."""
    from training.cleaning import clean_loans
    from training.label import assign_label

    cleaned, cleaning_report = clean_loans(load_raw(path, config), config)
    labelled, label_report = assign_label(cleaned, config)
    if config.views and not config.is_lending_club:
        labelled = join_views(labelled, config, Path(path).parent)
    return labelled, cleaning_report, label_report


def view_source_path(view: FeatureView, data_dir: Path) -> Path:
    """Where a view's source table is: its ``source`` path, relative to the loan file's folder."""
    path = Path(view.source).expanduser()
    return path if path.is_absolute() else data_dir / path


def join_views(frame: pd.DataFrame, config: DatasetConfig, data_dir: Path) -> pd.DataFrame:
    """Each application row with its customer's view values, computed by the same
    ``aggregate_view`` that materializes them into the feature store (customers without rows
    in a view get missing values, as the worker sees them)."""
    import pandas as pd

    from features.views import aggregate_view
    from training.cleaning import CUSTOMER_ID

    joined = frame
    for view in config.views:
        source = view_source_path(view, data_dir)
        if not source.is_file():
            raise FileNotFoundError(
                f"view {view.name!r} of dataset config {config.name!r} reads {source}, which "
                "does not exist; put the table beside the loan file or give its path in 'source'.")
        table = pd.read_csv(source, low_memory=False)
        values = aggregate_view(table, view)
        keys = joined[CUSTOMER_ID].astype(str).str.strip()
        joined = joined.assign(**{name: keys.map(values[name]).astype("float64")
                                  if name in values.columns else float("nan")
                                  for name in view.field_names})
    return joined
