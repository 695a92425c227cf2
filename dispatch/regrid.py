"""What activating a boundary version changes beyond where new reports go.

* **Grid assignments follow their grids.** A gridworker, mobile gridworker or grid leader of a
  grid code the new version no longer has moves to the new grid that covers most of the old
  one — the same grid renamed by a reassign, or the neighbour it was merged into — when that
  grid covers at least half of it. Otherwise the assignment stays as it was and is listed as
  unplaced, for an admin to redo.
* **Open work orders take their place in the active boundaries.** One whose grid is unchanged
  keeps it; the others are resolved again, and one whose grid, community or street changes
  moves there, with a ``regrid`` entry in its trail. One nobody has accepted yet goes where a
  new report there would go; one being worked on stays with whoever took it. The sweep does the
  same for orders made against the old version by processes that had not seen the activation
  yet.
"""

from __future__ import annotations

import numpy as np
import shapely
from sqlalchemy import and_, delete, select, update

from dispatch import schema as t
from dispatch.intake import assignee
from dispatch.model import FINAL, State
from geo.boundaries import BoundarySet, largest_overlap, to_metric
from geo.resolver import GAP, OK

MOVE_BATCH = 200  # open orders moved per transaction
FOLLOW_SHARE = 0.5  # the share of an old grid a new one must cover for its people to follow
SYSTEM = ("system", "system")  # who the trail names for a move made by an activation
_gg = t.gridworker_grids.c


def successors(old: BoundarySet, new: BoundarySet, codes) -> dict[str, str]:
    """For each of ``codes`` (grids of ``old`` missing from ``new``), the grid of ``new``
    covering at least ``FOLLOW_SHARE`` of it; codes without one are left out."""
    frame = old.grids[old.grids["code"].isin(list(codes))]
    if frame.empty:
        return {}
    geoms = np.asarray(frame.geometry.values)
    targets = np.asarray(new.grids.geometry.values)
    best = largest_overlap(geoms, targets, new.metric_crs)
    found = best >= 0
    shared = np.zeros(len(geoms))
    shared[found] = shapely.area(to_metric(
        shapely.intersection(geoms[found], targets[best[found]]), new.metric_crs))
    share = shared / shapely.area(to_metric(geoms, new.metric_crs))
    new_codes = new.grids["code"].to_numpy(object)
    return {code: new_codes[b] for code, b, s in zip(frame["code"], best, share, strict=True)
            if b >= 0 and s >= FOLLOW_SHARE}


def follow_grids(uow, old: BoundarySet | None, new: BoundarySet) -> dict:
    """Move the grid assignments of codes ``new`` no longer has (see the module doc), in
    ``uow``: ``{"followed": {old code: new code}, "unplaced": [old codes]}``."""
    known = set(new.grids["code"])
    gone = sorted(set(uow.execute(select(_gg.grid_code).distinct()).scalars()) - known)
    moves = successors(old, new, gone) if old is not None and gone else {}
    for code, target in moves.items():
        taken = select(_gg.gridworker_id).where(_gg.grid_code == target).scalar_subquery()
        uow.execute(update(t.gridworker_grids).where(
            and_(_gg.grid_code == code, _gg.gridworker_id.not_in(taken)))
            .values(grid_code=target))
        # whoever had both grids keeps the one they now share
        uow.execute(delete(t.gridworker_grids).where(_gg.grid_code == code))
    return {"followed": moves, "unplaced": [c for c in gone if c not in moves]}


def regrid_open_orders(service) -> dict:
    """Place every open order not yet placed under the active version (see the module doc):
    ``{"checked": n, "moved": n, "rerouted": n, "outside": n}``.

    An order whose grid the active version has unchanged (same shape, community and street)
    keeps it, even where its point lies elsewhere (a dispatcher's transfer stands); the others
    are resolved again by their point. One the active version does not cover keeps its codes
    and is counted as ``outside``. Each transaction first checks, under the activation lock,
    that the version is still the active one, so a run overtaken by an activation stops."""
    version, resolver = service.active_resolver()
    with service.db.read() as uow:
        rows = uow.orders.placed_elsewhere(version)
    counts = {"checked": len(rows), "moved": 0, "rerouted": 0, "outside": 0}
    if not rows:
        return counts
    kept_grids = {b: _unchanged(service.boundaries(b), resolver.boundaries)
                  for b in {r.boundary_version for r in rows}}
    stay = [r.id for r in rows if r.grid_code in kept_grids[r.boundary_version]]
    others = [r for r in rows if r.grid_code not in kept_grids[r.boundary_version]]
    moving = []
    if others:
        found = resolver.resolve_many([r.lon for r in others], [r.lat for r in others],
                                      errors="mark")
        placed = found["status"].isin([OK, GAP]).to_numpy()
        for row, place, ok in zip(others, zip(found["grid_code"], found["community_code"],
                                              found["street_code"], strict=True),
                                  placed, strict=True):
            place = _plain(place)
            if not ok:
                counts["outside"] += 1
                stay.append(row.id)
            elif place == (row.grid_code, row.community_code, row.street_code):
                stay.append(row.id)
            else:
                moving.append((row.id, place))
    now = service.clock()
    with service.db.unit_of_work() as uow:
        if not _still_active(service, uow, version):
            return counts
        uow.orders.keep_place(stay, version)
    # A few hundred orders per transaction, so intake never waits long behind a big redraw.
    for start in range(0, len(moving), MOVE_BATCH):
        with service.db.unit_of_work() as uow:
            if not _still_active(service, uow, version):
                break
            for order_id, place in moving[start:start + MOVE_BATCH]:
                order = uow.orders.get(order_id, lock=True)
                if order.state in FINAL or order.boundary_version == version:
                    continue  # closed or moved meanwhile
                order.regrid(place, version, *SYSTEM, now)
                if order.state == State.DISPATCHED:  # nobody took it: it goes as a new one would
                    to, queue = assignee(uow, place[0], place[1])
                    if (to, queue) != (order.assignee_id, order.queue):
                        order.reassign(to, queue, *SYSTEM, now,
                                       note=f"to {queue} of the new grid")
                        counts["rerouted"] += 1
                uow.orders.save(order)
                counts["moved"] += 1
    if counts["moved"]:
        service.changed()
    return counts


def _still_active(service, uow, version: int) -> bool:
    """Whether ``version`` is still the active one, read under the lock activation takes."""
    uow.lock("boundary_versions")
    active = service.active_row(uow)
    return active is not None and active.id == version


def _unchanged(old: BoundarySet, new: BoundarySet) -> set[str]:
    """Codes of the grids ``new`` has as ``old`` had them: same shape, community and street."""
    before = old.grids.dropna(subset=["code"]).set_index("code")
    after = new.grids.dropna(subset=["code"]).set_index("code")
    common = before.index.intersection(after.index)
    a, b = before.loc[common], after.loc[common]
    same = (shapely.equals(np.asarray(a.geometry.values), np.asarray(b.geometry.values))
            & (a["community_code"].to_numpy(object) == b["community_code"].to_numpy(object))
            & (a["street_code"].to_numpy(object) == b["street_code"].to_numpy(object)))
    return set(common[same])


def _plain(place) -> tuple:
    """Codes as stored: text, or None for a missing one (the resolver gives NaN or None)."""
    return tuple(c if isinstance(c, str) else None for c in place)
