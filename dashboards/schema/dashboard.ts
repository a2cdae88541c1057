// The type every built dashboard is checked against (python -m bundle.schema):
// Grafana's published dashboard model, the `Dashboard` interface of
// @grafana/schema (dist/types/raw/dashboard/x/types.gen.d.ts), read as the JSON
// a dashboard file holds. bundle/schema.py writes one module per dashboard,
// `export const dashboard: DashboardJson = <the dashboard's JSON>;`, and runs
// `tsc --noEmit --strict` over them: an object literal may only name the
// model's fields (a misspelt field fails), and every value must have the
// model's type (a string schemaVersion fails).
//
// Four adaptations, and nothing else:
// 1. Enums read as their JSON values: `"absolute"` is what a file holds where
//    the model says `ThresholdsMode.Absolute` (a TypeScript string enum accepts
//    only its members, never the string), `0 | 1 | 2 | 3` where it says
//    `VariableHide`. A value outside the enum still fails.
// 2. A panel's `links` are data links ({title, url, targetBlank?}), as Grafana
//    saves them and as the package's own v2 model (`DataLink`) has them; the v1
//    interface reuses `DashboardLink` there, which no saved panel link matches.
// 3. A query variable may carry `definition` (the query as shown in Grafana's
//    variable editor, which writes it; the v2 model's `QueryVariableSpec` has
//    it, the v1 interface does not).
// 4. A variable's `current` may be `{}` (no selection yet: Grafana selects on
//    load); when it is not empty, it must be a full `VariableOption`.
import type * as v1 from "@grafana/schema/dist/esm/raw/dashboard/x/Dashboard_types.gen";
import type { DataLink } from "@grafana/schema/apis/dashboard.grafana.app/v2";

/** A model type read as JSON: enum members become their values. */
type Json<T> = T extends string
  ? `${T}`
  : T extends number
    ? `${T}` extends `${infer N extends number}`
      ? N
      : T
    : T extends boolean | null | undefined
      ? T
      : T extends ReadonlyArray<infer U>
        ? Array<Json<U>>
        : T extends object
          ? { [K in keyof T]: Json<T[K]> }
          : T;

type Panel = Omit<v1.Panel, "links"> & { links?: DataLink[] };

type RowPanel = Omit<v1.RowPanel, "panels"> & { panels: Panel[] };

/** An empty `current`: none of a `VariableOption`'s fields. */
type NoSelection = { [K in keyof v1.VariableOption]?: never };

type VariableModel = Omit<v1.VariableModel, "current"> & {
  current?: v1.VariableOption | NoSelection;
  definition?: string;
};

type Dashboard = Omit<v1.Dashboard, "panels" | "templating"> & {
  panels?: Array<Panel | RowPanel>;
  templating?: { list?: VariableModel[] };
};

/** One dashboard file, as Grafana's dashboard model has it. */
export type DashboardJson = Json<Dashboard>;
