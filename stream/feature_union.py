"""One feature read for the champion and its challengers: the union of their views.

The reader fetches every view of a serving spec in one pipelined round trip. When the
challengers declare views the champion does not, the batch is read once with
:func:`union_spec` (the champion's spec, its views first, then each challenger's new views),
and each model gets its own share of the read back with :func:`projected`: its views' fields,
missing and stale lists, ages — what a read of its own spec would have given it. When every
model has the champion's views (a retrained version of the same dataset, the usual case), the
read is the champion's own and nothing is projected.

One approximation: a stored hash whose event time is unreadable is listed as ``_event_ts`` in
``corrupt`` without the view's name, so a projection keeps as many of those as its own views
have undated records. The champion's decision can then list ``_event_ts`` as missing when its
view was absent *and* a challenger's view held junk — an application that is already
incomplete, never approved, and so decided the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from features.online import OnlineFeatures
from features.serving import ServingSpec
from features.store import EVENT_TS
from features.views import FeatureView


class ViewConflict(ValueError):
    """Two models name the same view with different fields: one read cannot serve both."""


def union_spec(champion: ServingSpec, others: Sequence[ServingSpec]) -> ServingSpec:
    """The champion's spec reading every view any of the models needs (champion's first).
    :class:`ViewConflict` when a view name means different fields in two models, or a field
    would come from two views."""
    views: dict[str, FeatureView] = {view.name: view for view in champion.views}
    for spec in others:
        for view in spec.views:
            known = views.get(view.name)
            if known is None:
                views[view.name] = view
            elif known.field_names != view.field_names:
                raise ViewConflict(f"view {view.name!r} has fields {list(view.field_names)} "
                                   f"in one model and {list(known.field_names)} in another")
    if len(views) == len(champion.views):
        return champion
    try:
        return dataclasses.replace(champion, views=tuple(views.values()))
    except ValueError as error:
        raise ViewConflict(str(error)) from None


def projected(read: OnlineFeatures, union: ServingSpec, spec: ServingSpec,
              submitted_at: datetime) -> OnlineFeatures:
    """What a read of ``spec`` alone would have given, from a read of ``union``."""
    if union.views == spec.views and union.date_field == spec.date_field:
        return read
    own = {name for view in spec.views for name in view.field_names}
    foreign = {name for name in union.view_field_names if name not in own}
    if union.date_field and union.date_field != spec.date_field:
        foreign.add(union.date_field)
    record = {name: value for name, value in read.record.items() if name not in foreign}
    if spec.date_field:
        record[spec.date_field] = submitted_at
    ages = {view.name: read.age_seconds.get(view.name) for view in spec.views}
    undated = sum(age is None for age in ages.values())
    corrupt = [name for name in read.corrupt if name in own]
    corrupt += [EVENT_TS] * min(undated, read.corrupt.count(EVENT_TS))
    return OnlineFeatures(record=record,
                          missing=[name for name in read.missing if name in own],
                          stale=[name for name in read.stale if name in own],
                          corrupt=corrupt, age_seconds=ages, velocity=dict(read.velocity))
