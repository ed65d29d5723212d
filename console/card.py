"""What the console shows, read from the live model's card: the words for each field and
model input, the profile's sections, the inputs a customer is compared on, what makes
customers "similar", the Find filters and the new-application form.

Nothing here names a dataset: a field's words come from the card (``features[].label`` /
``description``, ``serving.field_labels``, view descriptions), with the field's own name
(underscores as spaces) when the card says nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from features.serving import EventField
from features.views import VELOCITY_LABELS, VELOCITY_VIEW
from onnx_models.card import CardFeature, ModelCard

# How many model inputs the Compare view plots (the most important ones with a reference).
COMPARE_LIMIT = 6
# How many categorical event fields the Find table shows and filters on.
FIND_CATEGORY_LIMIT = 4
UNKNOWN_CHOICE = "(not given)"


def plain_name(name: str) -> str:
    """``AMT_INCOME_TOTAL`` -> ``Amt income total``: the fallback when the card has no words."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:].lower() if text.isupper() else text[:1].upper() + text[1:]


@dataclass(frozen=True)
class CompareFeature:
    """A numeric model input the Compare view plots, with its words."""

    name: str
    label: str
    show_as_exp: bool = False    # the input is a log: shown as exp(value)
    source: str | None = None    # the raw field it is computed from, when it is one field


@dataclass(frozen=True)
class ProfileRow:
    name: str
    label: str
    nullable: bool = False


@dataclass(frozen=True)
class ProfileSection:
    """One table of the profile: the application, a feature view, or recent activity."""

    title: str
    record_part: Literal["application", "features", "velocity"]
    rows: tuple[ProfileRow, ...]
    marks_missing: bool = False


@dataclass(frozen=True)
class SimilarGroup:
    """Customers with the same values of the grouping fields (and the same numeric band)."""

    values: Mapping[str, object]
    band_field: str | None = None
    band: tuple[float, float | None] | None = None

    @property
    def complete(self) -> bool:
        return all(value is not None for value in self.values.values()) and \
            (self.band_field is None or self.band is not None)

    def holds(self, application: Mapping[str, object],
              band_of: Callable[[object], tuple[float, float | None] | None]) -> bool:
        if any(application.get(name) != value for name, value in self.values.items()):
            return False
        return self.band_field is None or band_of(application.get(self.band_field)) == self.band


@dataclass(frozen=True)
class FormField:
    """One input of the new-application form."""

    name: str
    label: str
    kind: Literal["number", "choice", "text"]
    required: bool
    nullable: bool
    choices: tuple[str, ...] = ()
    default: float | None = None


class ConsoleCard:
    """The live model card as the console reads it."""

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self.serving = card.serving_spec()
        self.features: dict[str, CardFeature] = {feature.name: feature for feature in card.features}

    # -- words ------------------------------------------------------------------------
    def field_label(self, name: str) -> str:
        """A raw field's name in words (event, view or velocity field)."""
        label = self.serving.field_labels.get(name) or VELOCITY_LABELS.get(name)
        if label:
            return str(label)
        feature = self.features.get(name)
        return (feature.label if feature else "") or plain_name(name)

    def input_label(self, name: str) -> str:
        """A model input's neutral name (for showing the customer's own value)."""
        feature = self.features.get(name)
        return ((feature.label if feature else "") or self.serving.field_labels.get(name)
                or plain_name(name))

    def view_title(self, name: str, description: str) -> str:
        return description or plain_name(name)

    # -- profile ----------------------------------------------------------------------
    def profile_sections(self) -> list[ProfileSection]:
        """The application's event fields, then each view's fields, then recent activity."""
        sections = [ProfileSection("Application", "application", tuple(
            ProfileRow(item.name, self.field_label(item.name)) for item in self.serving.event_fields))]
        for view in self.serving.views:
            sections.append(ProfileSection(
                self.view_title(view.name, view.description), "features",
                tuple(ProfileRow(spec.name, self.field_label(spec.name), spec.nullable)
                      for spec in view.fields), marks_missing=True))
        sections.append(ProfileSection(
            VELOCITY_VIEW.description or "Recent activity", "velocity",
            tuple(ProfileRow(name, self.field_label(name)) for name in VELOCITY_VIEW.field_names)))
        return sections

    # -- comparisons --------------------------------------------------------------------
    def compare_features(self, limit: int = COMPARE_LIMIT) -> list[CompareFeature]:
        """Numeric inputs with training quantiles, the model's most important first."""
        references = self.card.reference.features
        candidates = [name for name in self.card.inputs_by_importance()
                      if self.features[name].type == "numeric"
                      and references.get(name, {}).get("quantiles")]
        return [self._compare_feature(name) for name in candidates[:limit]]

    def _compare_feature(self, name: str) -> CompareFeature:
        feature = self.features[name]
        sources = feature.inputs
        return CompareFeature(name, self.input_label(name), feature.display == "exp",
                              sources[0] if len(sources) == 1 else None)

    # -- similar customers -------------------------------------------------------------
    def similar_group(self, application: Mapping[str, object]) -> SimilarGroup:
        values = {name: application.get(name) for name in self.serving.similar_by}
        band = self.serving.similar_band
        if band is None:
            return SimilarGroup(values)
        return SimilarGroup(values, band.field, self.band_of(application.get(band.field)))

    def band_of(self, value: object) -> tuple[float, float | None] | None:
        band = self.serving.similar_band
        if band is None or isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return band.band_of(float(value))

    def group_definition(self) -> str:
        """'the same purpose and the same annual income band' in words."""
        parts = [f"the same {self.field_label(name).lower()}" for name in self.serving.similar_by]
        if self.serving.similar_band is not None:
            parts.append(f"the same {self.field_label(self.serving.similar_band.field).lower()} band")
        if not parts:
            return "all decisions (the model card names no grouping fields)"
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    def group_text(self, group: SimilarGroup) -> str:
        """'Purpose “car”, Annual income 50,000–75,000'."""
        parts = [f"{self.field_label(name)} “{'unknown' if value is None else value}”"
                 for name, value in group.values.items()]
        if group.band_field is not None:
            label = self.field_label(group.band_field)
            if group.band is None:
                parts.append(f"{label} unknown")
            else:
                low, high = group.band
                parts.append(f"{label} {low:,.0f} or more" if high is None
                             else f"{label} {low:,.0f}–{high:,.0f}")
        return ", ".join(parts)

    def group_training_text(self, group: SimilarGroup) -> str:
        """What the training data said about the customer's group values (bad rates)."""
        groups = self.card.reference.groups
        lines = []
        for name, value in group.values.items():
            stats = groups.get(name, {}).get(str(value)) if value is not None else None
            if stats and "bad_rate" in stats:
                lines.append(f"{100 * float(stats['bad_rate']):.0f} % of "
                             f"{self.field_label(name).lower()} “{value}” loans")
        if not lines:
            return ""
        return " In the training data " + " and ".join(lines) + " were not repaid."

    # -- Find --------------------------------------------------------------------------
    def find_columns(self) -> list[str]:
        """Categorical event fields the Find table shows and filters on (grouping first)."""
        categorical = [item.name for item in self.serving.event_fields
                       if item.kind == "categorical"]
        ordered = [name for name in self.serving.similar_by if name in categorical]
        ordered += [name for name in categorical if name not in ordered]
        return ordered[:FIND_CATEGORY_LIMIT]

    def risk_grades(self) -> list[str]:
        """The card's risk grades, safest first."""
        return [band.grade for band in self.card.risk_grades]

    @property
    def amount_field(self) -> str | None:
        return self.serving.amount_field

    # -- the new-application form --------------------------------------------------------
    def form_fields(self) -> list[FormField]:
        return [self._form_field(item) for item in self.serving.event_fields]

    def _form_field(self, item: EventField) -> FormField:
        label = self.field_label(item.name)
        if item.kind == "numeric":
            return FormField(item.name, label, "number", item.required, item.nullable,
                             default=self._typical_value(item.name))
        choices = self.category_choices(item.name)
        kind: Literal["choice", "text"] = "choice" if choices else "text"
        return FormField(item.name, label, kind, item.required, item.nullable, tuple(choices))

    def category_choices(self, name: str) -> list[str]:
        feature = self.features.get(name)
        if feature is None or feature.type != "categorical":
            return []
        return list(feature.categories or ())

    def _typical_value(self, name: str) -> float | None:
        """The training median of the field (through the input computed from it alone)."""
        references = self.card.reference.features
        for feature in self.card.features:
            median = references.get(feature.name, {}).get("quantiles", {}).get("0.5")
            if feature.inputs == (name,) and median is not None:
                value = math.exp(float(median)) if feature.display == "exp" else float(median)
                return float(round(value)) if abs(value) >= 10 else round(value, 3)
        return None
