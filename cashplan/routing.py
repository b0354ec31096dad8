"""Routes for one day's visits: a vehicle-routing problem with time windows (OR-Tools).

Each cash engineer (:class:`Crew`) starts and ends the day at a base, works a
shift; each visit (:class:`Stop`) is at a place, takes its service minutes and
must start inside its time window (the site's service hours). Travel time is
the great-circle distance at a road speed plus a few minutes to get into the
site, in whole minutes. The solver (OR-Tools routing: cheapest-arc first
solution, then guided local search for at most ``time_limit_s``) minimises
the total travel time; a visit that fits no route is left out at a penalty
and reported in :attr:`RoutePlan.unrouted`, never silently dropped.

Times are minutes from the start of the day, in the day's local time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from cashplan.errors import InvalidArgument, RoutingFailed

EARTH_RADIUS_KM = 6371.0088
ACCESS_MINUTES = 5
DAY_MINUTES = 24 * 60
DROP_PENALTY = 1_000_000


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Stop:
    """A visit to route."""

    key: str
    latitude: float
    longitude: float
    service_minutes: int = 45
    window_start: int = 0  # the visit may start from this minute of the day
    window_end: int = DAY_MINUTES  # ... until this one


@dataclass(frozen=True)
class Crew:
    """A cash engineer (or van) for the day."""

    key: str
    latitude: float
    longitude: float
    shift_start: int = 8 * 60
    shift_end: int = 17 * 60


@dataclass(frozen=True)
class RouteStop:
    key: str
    arrival: int  # minute of the day the visit starts (after any wait)
    departure: int
    travel_km: float  # from the previous place


@dataclass(frozen=True)
class Route:
    crew: str
    stops: list[RouteStop]
    start: int  # leaves the base
    end: int  # back at the base
    distance_km: float


@dataclass(frozen=True)
class RoutePlan:
    routes: list[Route]  # one per crew that has visits
    unrouted: list[str]

    @property
    def distance_km(self) -> float:
        return round(sum(route.distance_km for route in self.routes), 1)


def _check(stops: Sequence[Stop], crews: Sequence[Crew], speed_kmh: float) -> None:
    if speed_kmh <= 0:
        raise InvalidArgument("speed_kmh must be above 0", field="speed_kmh")
    keys = [stop.key for stop in stops]
    if len(set(keys)) != len(keys):
        raise InvalidArgument("stop keys must be unique", field="stops")
    for stop in stops:
        if not 0 <= stop.window_start < stop.window_end <= DAY_MINUTES:
            raise InvalidArgument(
                f"stop {stop.key}: its window is not within the day", field="stops"
            )
        if stop.service_minutes < 0:
            raise InvalidArgument(f"stop {stop.key}: service_minutes below 0", field="stops")
    for crew in crews:
        if not 0 <= crew.shift_start < crew.shift_end <= DAY_MINUTES:
            raise InvalidArgument(
                f"crew {crew.key}: its shift is not within the day", field="crews"
            )


def plan_routes(
    stops: Sequence[Stop],
    crews: Sequence[Crew],
    *,
    speed_kmh: float = 40.0,
    time_limit_s: float = 2.0,
) -> RoutePlan:
    """Order the day's visits into routes, one per crew, within windows and shifts."""
    _check(stops, crews, speed_kmh)
    if not stops:
        return RoutePlan([], [])
    if not crews:
        return RoutePlan([], [stop.key for stop in stops])
    # Nodes: one start/end node per crew, then the stops.
    places = [(c.latitude, c.longitude) for c in crews] + [(s.latitude, s.longitude) for s in stops]
    n_crews = len(crews)
    size = len(places)
    km = [[haversine_km(*places[i], *places[j]) for j in range(size)] for i in range(size)]
    minutes = [
        [
            0 if i == j else math.ceil(km[i][j] / speed_kmh * 60) + ACCESS_MINUTES
            for j in range(size)
        ]
        for i in range(size)
    ]
    service = [0] * n_crews + [stop.service_minutes for stop in stops]
    starts = list(range(n_crews))
    manager = pywrapcp.RoutingIndexManager(size, n_crews, starts, starts)
    model = pywrapcp.RoutingModel(manager)

    def travel(from_index: int, to_index: int) -> int:
        i, j = int(manager.IndexToNode(from_index)), int(manager.IndexToNode(to_index))
        return int(minutes[i][j])

    def elapsed(from_index: int, to_index: int) -> int:
        i, j = int(manager.IndexToNode(from_index)), int(manager.IndexToNode(to_index))
        return int(service[i] + minutes[i][j])

    travel_cb = model.RegisterTransitCallback(travel)
    time_cb = model.RegisterTransitCallback(elapsed)
    model.SetArcCostEvaluatorOfAllVehicles(travel_cb)
    model.AddDimension(time_cb, DAY_MINUTES, DAY_MINUTES, False, "time")
    clock = model.GetDimensionOrDie("time")
    for offset, stop in enumerate(stops):
        index = manager.NodeToIndex(n_crews + offset)
        clock.CumulVar(index).SetRange(stop.window_start, stop.window_end)
        model.AddDisjunction([index], DROP_PENALTY)
    for vehicle, crew in enumerate(crews):
        clock.CumulVar(model.Start(vehicle)).SetRange(crew.shift_start, crew.shift_end)
        clock.CumulVar(model.End(vehicle)).SetRange(crew.shift_start, crew.shift_end)
        model.AddVariableMinimizedByFinalizer(clock.CumulVar(model.Start(vehicle)))
        model.AddVariableMinimizedByFinalizer(clock.CumulVar(model.End(vehicle)))
    search = pywrapcp.DefaultRoutingSearchParameters()
    search.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    search.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    search.time_limit.FromMilliseconds(max(1, int(time_limit_s * 1000)))
    solution = model.SolveWithParameters(search)
    if solution is None:
        raise RoutingFailed("the routing solver found no solution for the day's visits")
    routes = []
    routed: set[str] = set()
    for vehicle, crew in enumerate(crews):
        index = model.Start(vehicle)
        start = solution.Min(clock.CumulVar(index))
        visited: list[RouteStop] = []
        distance = 0.0
        previous = manager.IndexToNode(index)
        index = solution.Value(model.NextVar(index))
        while not model.IsEnd(index):
            node = manager.IndexToNode(index)
            stop = stops[node - n_crews]
            arrival = solution.Min(clock.CumulVar(index))
            visited.append(
                RouteStop(
                    key=stop.key,
                    arrival=arrival,
                    departure=arrival + stop.service_minutes,
                    travel_km=round(km[previous][node], 2),
                )
            )
            distance += km[previous][node]
            routed.add(stop.key)
            previous = node
            index = solution.Value(model.NextVar(index))
        if visited:
            distance += km[previous][vehicle]
            end = solution.Min(clock.CumulVar(index))
            routes.append(Route(crew.key, visited, start, end, round(distance, 2)))
    unrouted = [stop.key for stop in stops if stop.key not in routed]
    return RoutePlan(routes, unrouted)
