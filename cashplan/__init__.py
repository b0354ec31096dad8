"""Cash forecasting and replenishment planning for ATMs: a library with no web, database
or process concerns.

* :mod:`cashplan.forecast`: daily demand per ATM and denomination (seasonal exponential
  smoothing with payday and holiday regressors), prediction intervals, simulated paths;
* :mod:`cashplan.depletion`: when each cassette reaches its minimum; levels ahead;
* :mod:`cashplan.planning`: visit days and loads that minimise visit plus idle-cash cost
  under a cash-out probability target;
* :mod:`cashplan.routing`: each day's visits ordered into routes (OR-Tools, time windows);
* :mod:`cashplan.svg`: the charts, as SVG text.
"""

from cashplan.calendar import DemandCalendar
from cashplan.depletion import (
    CassetteLevel,
    LevelBands,
    TimeToMinimum,
    project_levels,
    time_to_minimum,
)
from cashplan.errors import CashPlanError, InvalidArgument, RoutingFailed
from cashplan.forecast import DemandModel, Forecast, fit, mape
from cashplan.planning import AtmPlan, PlanningPolicy, VisitPlan, plan_atm
from cashplan.routing import Crew, Route, RoutePlan, RouteStop, Stop, plan_routes

__all__ = [
    "AtmPlan",
    "CashPlanError",
    "CassetteLevel",
    "Crew",
    "DemandCalendar",
    "DemandModel",
    "Forecast",
    "InvalidArgument",
    "LevelBands",
    "PlanningPolicy",
    "Route",
    "RoutePlan",
    "RouteStop",
    "RoutingFailed",
    "Stop",
    "TimeToMinimum",
    "VisitPlan",
    "fit",
    "mape",
    "plan_atm",
    "plan_routes",
    "project_levels",
    "time_to_minimum",
]
