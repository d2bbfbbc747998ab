"""The analytics store: a DuckDB copy of the ledger kept in step by id watermarks, plus stints derived from it.

Why DuckDB and not stint rows written by the services: the reports scan millions of stints (durations,
bottlenecks, funnels); SQLite's row engine needs seconds for one such scan at 1 M leads, DuckDB's columnar
engine a tenth of that. The ledger is append-only, so a copy is kept current by fetching the rows whose id
is above a watermark; no write path has to call anything, and both SQLite and PostgreSQL feed the same
DuckDB SQL, so the answers cannot differ between the two stores.

What is kept (all in one DuckDB file, see `store_path`):

* ``ledger_m`` – the ledger columns reports need (one row per entry), statuses named as the newest model
  names them (`analytics.status_map`: renamed, merged and split statuses; ``ledger_rec`` keeps what was recorded).
* ``leads_m`` – source, campaign, the incomplete flag and the account key of each lead (refreshed when its
  ledger grows: a change of company or e-mail is a ledger entry).
* ``flags_m`` – every account-review flag (``account_flags``) with when it was raised, cleared and dismissed:
  copied whole at every sync (a flag changes without a ledger entry, and there are few of them), so
  ``account.flagged`` can be read as of any time.
* ``act_first`` – the first time each activity type was logged on each lead (first touch needs no more).
* ``act_m`` – every activity's lead, type and time (what was done during a stint, for governance).
* ``inst`` – derived: a lead's instants (entries at the same ``at`` collapse into the one with the highest
  seq) with the time of the next instant, so "the state at T" is a filter, not an aggregation.
* ``stints`` – derived: time in one status, from entering it to the next change of status, with the
  attributes of the entry that started it, business time counters for every calendar of the model, and, once
  it has ended, how many activities were logged during it (``acts``).
* ``first_touch`` – derived: when each lead was first touched, by whom, since when that owner had it.
* ``calday`` – business time per calendar and UTC day (see `calendar_days`).
* ``fvals`` – derived: each field value a lead's entries set (the data every entry captured), with the time
  the next value replaced it, so "the lead's fields at T" is a filter, as for the state (segments read it).
  A full rebuild stores it by field, so a question about a few fields reads only their row groups.

Derived rows are recomputed for the leads the new rows concern (late imported history included), and for
every lead when the status model changes (calendars, outreach activity types) or the data leaves the
range the day table covers.

The modules: `connection` (the file, opening it, the copied tables, meta), `sync` (copying rows above the
watermarks; why the watermark waits on PostgreSQL), `source` (reading the source database's rows), `derive`
(the derived tables), `scanner` (the first sync from PostgreSQL through DuckDB's postgres scanner),
`sqlite_reader` (the child process that reads SQLite's big id ranges as Arrow) and `status` (how far it has
copied, for `/metrics`).
"""
