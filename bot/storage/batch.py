"""A write transaction declared before it runs, so the store can send it in ONE round trip:
on SQLite one hop to aiosqlite's worker thread (BEGIN IMMEDIATE, the statements, COMMIT), on
PostgreSQL one statement (each write a data-modifying CTE). Issue #12: saving a form was two
transactions and a read back, 9 to 12 round trips; as a batch it is the step's read and one.

A statement may use the id of a row an earlier one inserted (`Ref`) before it is known. An
insert that finds its row there already (ON CONFLICT DO NOTHING: the same form token saved
before) gives the existing row's id (`existing`), and the statements marked `if_new` are then
skipped: a record is never written twice.

A record that exists already changes with a guarded UPDATE (`update`: e.g. the status still
the one the user saw): its Ref stands for the record's id once the row changed, so the
statements marked `if_new` with it run only then (a reply's call-back is planned once); one
marked `needed` rolls the whole batch back when it changed nothing (`Unchanged`): a change
refused writes nothing, the form's close included.

On PostgreSQL every sub-statement of one statement sees the database as it was before it:
a statement here must not read what an earlier one in the batch wrote (except through a
Ref), and a batch writing one table in two statements is run statement by statement (in one
transaction, as many round trips as statements), since their order would be unpredictable.
For the same reason the rows of one `executemany` get their ids in no set order there: rows
whose order matters carry it (a position column), or are one statement (Reminders.plan_into).

A `declined` update is a `needed` one that says why (`Declined`, a locale key): the form's
engine tells the user so and keeps the form. A statement marked `sees_before` touches only
rows that were there before the batch, none another statement writes (a record's pending
reminders cancelled before its next ones are planned): PostgreSQL may then run it in the one
statement with the others.

Rows one after another inserted into one table with ids (`insert_rows`: a task per
assignee) are one multi-row INSERT there, their ids in row order; elsewhere row by row. A later
statement planning for each of them names each row by `IfNew(ref)`: its id if the batch
inserted it, else NULL (the plan skips it), so one statement plans for all of them.

A batch may end with reads of one value each (`read`: e.g. whether the team has a lead to
hand a record just saved to, for the saved card's buttons), or of rows (`read_rows`: what a
tap's reply shows), in the same round trip. On PostgreSQL they too may see the database as
before the batch: read only what it does not write, or word the reply with the change
applied.

What a refusal is told from (whose 户号 the insert found taken, the record an edit's guard
found changed) is read only when a guard refused the batch (`read_if_refused`), in the
database as it is without the batch's writes, in the same round trip as the refused write:
on SQLite after the ROLLBACK in the same hop, on PostgreSQL in the one statement's failure
(taiqu_refused's DETAIL, migration 0039)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Collection, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

# Asked of a player: ("run", sql, params) -> (rowcount, new row id);
# ("many", sql, rows) -> None; ("id", sql, params) -> the first column of the first row;
# ("rows", sql, params) -> all rows.
Call = tuple[str, str, Any]
_TARGET = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+([A-Za-z_]\w*)",
                     re.IGNORECASE)


@dataclass(frozen=True)
class Ref:
    """The id of the row statement `n` of a batch inserts (or finds, see `existing`)."""

    n: int


@dataclass(frozen=True)
class IfNew:
    """A parameter: the id of `ref`'s row if the batch inserted (or changed) it, else NULL."""

    ref: Ref


@dataclass(frozen=True)
class RowOf:
    """A statement that is one row of a multi-row insert (`Batch.insert_rows`): the first
    row's statement, the parts of its SQL around the VALUES row, and its key (a UNIQUE
    column) and value, by which PostgreSQL's one statement finds this row's id."""

    first: int
    head: str  # "INSERT INTO t(a, b) VALUES "
    tail: str  # " ON CONFLICT(key) DO NOTHING"
    key: str
    value: Any


@dataclass(frozen=True)
class Statement:
    sql: str
    rows: tuple[tuple[Any, ...], ...]  # one row of parameters, or executemany's rows
    many: bool = False
    gives_id: bool = False  # an insert whose new row's id is a Ref
    # For an insert whose id is a Ref: the id of the row already there when it inserted
    # nothing (SQL and parameters of a one-column read).
    existing: tuple[str, tuple[Any, ...]] | None = None
    if_new: Ref | None = None  # skipped unless this Ref's row was inserted by the batch
    # An UPDATE of the row with this id (`Batch.update`): its Ref stands for it if it changed.
    known_id: int | None = None
    needed: bool = False  # changing nothing rolls the batch back (Unchanged, or Declined:)
    declined: tuple[str, tuple[tuple[str, Any], ...]] | None = None  # its wording, if given
    # The wording applies only when this read (one value, SQL and parameters) is true, in
    # the rolled-back transaction: else Unchanged (the guard that failed was another one).
    declined_when: tuple[str, tuple[Any, ...]] | None = None
    # Touches only rows that were there before the batch, none that another statement of it
    # writes, and comes before any other write of its table (a record's reminders cancelled
    # before its next ones are planned): on PostgreSQL it may share the one statement with
    # them, where it sees the table as before the batch all the same.
    sees_before: bool = False
    row_of: RowOf | None = None  # one row of a multi-row insert (Batch.insert_rows)

    @property
    def table(self) -> str:
        m = _TARGET.match(self.sql)
        if m is None:
            raise ValueError(f"not a write: {self.sql[:60]}")
        return m.group(1).lower()


class Unchanged(Exception):
    """A `needed` statement of a batch changed nothing: the batch was rolled back."""

    def __init__(self, n: int) -> None:
        super().__init__(f"statement {n} of the batch changed nothing")
        self.n = n


class Declined(Unchanged):
    """An Unchanged whose `update` said why, as a locale key and its values: the user is told
    so (the form's engine shows it like an Invalid answer)."""

    def __init__(self, n: int, key: str, **kwargs: Any) -> None:
        super().__init__(n)
        self.key = key
        self.kwargs = kwargs


@dataclass
class Read:
    """A read run with a batch: one value (the first column of its one row), or its rows
    (`rows`, a list); its `value` once the batch ran."""

    sql: str
    params: tuple[Any, ...]
    value: Any = None
    rows: bool = False


@dataclass
class Batch:
    statements: list[Statement] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    # Read only when a guard refused the batch (read_if_refused).
    refused_reads: list[Read] = field(default_factory=list)
    # Once it ran (set by whichever store ran it): for a form's `saved`, which is given only
    # the record's id; whoever runs a batch itself reads its Played instead.
    ran: Played | None = None

    def changed(self, ref: Ref) -> bool:
        """Once the batch ran: whether its guarded update `ref` (update) changed its row."""
        return self.ran is not None and self.ran.changed(ref)

    def read(self, sql: str, params: Sequence[Any] = ()) -> Read:
        """A read of one value (one row, first column), run after the writes, in the same
        round trip; a Ref in `params` is the row's id."""
        self.reads.append(Read(sql, tuple(params)))
        return self.reads[-1]

    def read_rows(self, sql: str, params: Sequence[Any] = ()) -> Read:
        """A read of rows (its `value` a list of them), run after the writes, in the same
        round trip (on PostgreSQL as a JSON column: rows read back as by fetch_many)."""
        self.reads.append(Read(sql, tuple(params), rows=True))
        return self.reads[-1]

    def read_if_refused(self, sql: str, params: Sequence[Any] = ()) -> Read:
        """A read of rows run only when a guard refused the batch (Unchanged or Declined), in
        the database as it is without the batch's writes, in the same round trip as the
        refused write: why it was refused, without a trip of its own (issue #12). Its `value`
        is the list of rows once refused, else None (no Ref in `params`: nothing was
        written)."""
        if any(isinstance(p, Ref | IfNew) for p in params):
            raise ValueError("read_if_refused: a Ref has no id when the batch is refused")
        self.refused_reads.append(Read(sql, tuple(params), rows=True))
        return self.refused_reads[-1]

    def insert(self, sql: str, params: Sequence[Any], *,
               existing: tuple[str, Sequence[Any]] | None = None,
               if_new: Ref | None = None, needed: bool = False) -> Ref:
        """An INSERT of one row, into a table with an `id`; its id as a Ref. `needed`: one
        that inserts nothing (ON CONFLICT DO NOTHING: a key taken meanwhile) rolls the batch
        back (Unchanged)."""
        self.statements.append(Statement(
            sql, (tuple(params),), gives_id=True, existing=(existing[0], tuple(existing[1]))
            if existing else None, if_new=if_new, needed=needed))
        return Ref(len(self.statements) - 1)

    def insert_rows(self, table: str, key: str, rows: Sequence[dict[str, Any]], *,
                    unique: bool = True, if_new: Ref | None = None) -> list[Ref]:
        """Rows of a table with an `id` (the same columns in each), each inserted once by its
        `key` (a UNIQUE column among them: ON CONFLICT DO NOTHING, else the row there gives
        its id); their ids as Refs, in row order. On PostgreSQL one INSERT of several VALUES
        rows (the ids in row order, the table written once); elsewhere row by row.
        `unique=False`: `key` only tells these rows apart (a plan's item positions), they are
        new rows, written only if `if_new`'s row is (a plan's first items)."""
        first = len(self.statements)
        for row in rows:
            if list(row) != list(rows[0]):
                raise ValueError(f"insert_rows into {table}: rows with other columns")
            head = f"INSERT INTO {table}({', '.join(row)}) VALUES "
            tail = f" ON CONFLICT({key}) DO NOTHING" if unique else ""
            self.statements.append(Statement(
                f"{head}({', '.join('?' for _ in row)}){tail}", (tuple(row.values()),),
                gives_id=True, existing=(f"SELECT id FROM {table} WHERE {key} = ?", (row[key],))
                if unique else None, if_new=if_new,
                row_of=RowOf(first, head, tail, key, row[key])))
        return [Ref(n) for n in range(first, len(self.statements))]

    def update(self, sql: str, params: Sequence[Any], rid: int, *, needed: bool = False,
               if_new: Ref | None = None, declined: str | None = None,
               declined_when: tuple[str, Sequence[Any]] | None = None, **why: Any) -> Ref:
        """An UPDATE of the row `rid` (of a table with an `id`), guarded in its WHERE; its
        Ref counts as new (for `if_new`) only if the row changed. `needed`: else the batch is
        rolled back and Unchanged raised; `declined` (a locale key, `why` its values) is
        `needed` with the words that tell the user why: Declined(declined, **why), or, with
        `declined_when` (a one-value read), only if that read says so, else Unchanged: which
        of two guards held it back (the record moved on, or a rule refused it)."""
        self.statements.append(Statement(
            sql, (tuple(params),), gives_id=True, known_id=rid,
            needed=needed or declined is not None, if_new=if_new,
            declined=(declined, tuple(why.items())) if declined else None,
            declined_when=(declined_when[0], tuple(declined_when[1]))
            if declined_when else None))
        return Ref(len(self.statements) - 1)

    def execute(self, sql: str, params: Sequence[Any] = (), *,
                if_new: Ref | None = None, sees_before: bool = False,
                declined: str | None = None, **why: Any) -> None:
        """A statement; `declined` (a locale key, `why` its values): when it changes no row,
        the batch is rolled back and Declined(declined, **why) raised (e.g. a push planned
        for the team's leads, found by the write: with none, nothing is sent)."""
        self.statements.append(Statement(
            sql, (tuple(params),), if_new=if_new, sees_before=sees_before,
            needed=declined is not None,
            declined=(declined, tuple(why.items())) if declined else None))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]], *,
                    if_new: Ref | None = None) -> None:
        if rows:  # nothing to write: no statement (and no trip when run one by one)
            self.statements.append(Statement(sql, tuple(tuple(r) for r in rows), many=True,
                                             if_new=if_new))

    def one_table_each(self) -> bool:
        """No table written by two statements (PostgreSQL may then run it as one)."""
        tables = [s.table for n, s in enumerate(self.statements) if not s.sees_before
                  and (s.row_of is None or s.row_of.first == n)]
        return len(tables) == len(set(tables))


class Played(dict[int, int]):
    """Statement number -> the id its Ref stands for, after the batch ran."""

    def id_of(self, ref: Ref | int | None) -> int | None:
        return self[ref.n] if isinstance(ref, Ref) else ref

    def changed(self, ref: Ref) -> bool:
        """Whether an `update` changed its row (or an insert found or made one)."""
        return ref.n in self


def _resolve(row: tuple[Any, ...], ids: Played, new: Collection[int] = ()) -> tuple[Any, ...]:
    return tuple(ids[p.n] if isinstance(p, Ref)
                 else (ids[p.ref.n] if p.ref.n in new else None) if isinstance(p, IfNew)
                 else p for p in row)


def steps(batch: Batch) -> Generator[Call, Any, Played]:
    """The batch statement by statement, for a player (sync in SQLite's worker thread, or
    async on a PostgreSQL transaction) that runs each call and sends back its result."""
    ids = Played()
    new: set[int] = set()
    for n, st in enumerate(batch.statements):
        if st.if_new is not None and st.if_new.n not in new:
            continue
        rows = [_resolve(r, ids, new) for r in st.rows]
        if st.many:
            yield ("many", st.sql, rows)
            continue
        rowcount, rowid = yield ("run", st.sql, rows[0])
        if st.needed and rowcount <= 0:
            if st.declined is not None and (st.declined_when is None or (
                    yield ("id", st.declined_when[0], _resolve(st.declined_when[1], ids)))):
                raise Declined(n, st.declined[0], **dict(st.declined[1]))
            raise Unchanged(n)
        if not st.gives_id:
            continue
        if rowcount > 0:
            ids[n] = int(rowid if st.known_id is None else st.known_id)
            new.add(n)
        elif st.existing is not None:
            ids[n] = int((yield ("id", st.existing[0], _resolve(st.existing[1], ids))))
    for read in batch.reads:
        read.value = yield ("rows" if read.rows else "id", read.sql, _resolve(read.params, ids))
    batch.ran = ids
    return ids


# A quoted string, a quoted name, a comment, or a placeholder: only the last is rewritten.
SQL_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|\?")


# Arguments one statement may take (asyncpg's limit): a batch with more (a task to a team of
# a thousand) runs statement by statement.
PG_MOST_ARGS = 32767
# A read's rows as one JSON column (PostgreSQL): a batch's `read_rows`, Backend.fetch_many.
JSON_ROWS = "(SELECT coalesce(json_agg(many_q)::text, '[]') FROM ({}) many_q)"


def pg_one_statement(batch: Batch, id_tables: frozenset[str]) -> tuple[str, list[Any]] | None:
    """The batch as one PostgreSQL statement (`$n` placeholders) and its arguments; None when
    it must run statement by statement (a table written twice). Returns the ids of the Refs
    as columns r<n> (NULL: a write nothing depends on wrote nothing); another Ref whose
    insert found its row there already (nothing inserted), or whose update changed nothing,
    makes the statement fail (taiqu_refused, all rolled back) naming the first such guard:
    a `needed` one is the batch's Declined or Unchanged (`refusal`), at no more round trips
    than a batch accepted; else the caller runs it statement by statement, where `existing`
    and `if_new` apply. The rows of an
    `insert_rows` are one INSERT with several VALUES rows (its first statement's), returning
    each row's id with its key."""
    if not batch.one_table_each():
        return None
    args: list[Any] = []
    refs = {p.ref.n if isinstance(p, IfNew) else p.n for st in batch.statements
            for r in st.rows for p in r if isinstance(p, Ref | IfNew)}
    refs |= {st.if_new.n for st in batch.statements if st.if_new is not None}
    refs |= {p.n for read in batch.reads for p in read.params if isinstance(p, Ref)}
    # A guarded update (or an INSERT … SELECT with no `existing`) nothing else depends on
    # (not `needed`, no statement or read uses its Ref) is not guarded here: writing nothing,
    # it is simply left out of Played (as on SQLite), rather than sending the batch again
    # statement by statement (a second tap, a change refused).
    # So is one whose Ref only the statements `if_new` on it use (an UPDATE, DELETE or
    # INSERT … SELECT with a WHERE, then run only if it changed a row: e.g. a reminder's
    # pending push cancelled with its 完成, a plan's reminders planned with its 提交), or
    # IfNew (NULL when nothing changed, as on SQLite).
    hard = {p.n for st in batch.statements for r in st.rows for p in r if isinstance(p, Ref)}
    hard |= {p.n for read in batch.reads for p in read.params if isinstance(p, Ref)}
    hard |= {st.if_new.n for st in batch.statements if st.if_new is not None
             and (st.needed or _only_if(st.sql, "") is None)}
    loose = {n for n, st in enumerate(batch.statements)
             if st.gives_id and st.existing is None and st.row_of is None and not st.needed
             and n not in hard}
    # Every insert that gives an id returns it and is guarded, as play_sync does on SQLite:
    # the caller may only read its id (Played.id_of), and a token saved before must show.
    refs |= {n for n, st in enumerate(batch.statements) if st.gives_id}
    # A `needed` statement that gives no id (Batch.execute's `declined`) is guarded too: it
    # returns a row per row it wrote, and none makes the statement fail.
    guarded = {n for n, st in enumerate(batch.statements) if st.needed and not st.gives_id}
    parts: list[str] = []

    def source(n: int) -> str:
        """Where statement n's row is: its own CTE, or its row of a multi-row insert's."""
        row_of = batch.statements[n].row_of
        if row_of is None:
            return f"s{n}_0"
        args.append(row_of.value)
        return f"s{row_of.first}_0 WHERE {row_of.key} = ${len(args)}"

    def numbered_in(values: Iterator[Any]) -> Callable[[re.Match[str]], str]:
        def numbered(m: re.Match[str]) -> str:
            if m.group() != "?":
                return m.group()
            value = next(values)
            if isinstance(value, IfNew):  # here every Ref is new, or the statement fails
                value = value.ref
            if isinstance(value, Ref):
                return f"(SELECT id FROM {source(value.n)})"
            args.append(value)
            return f"${len(args)}"
        return numbered

    for n, st in enumerate(batch.statements):
        if st.row_of is not None:
            if st.row_of.first != n:
                continue  # a row of the first one's INSERT
            rows = [r for later in batch.statements[n:] if later.row_of is not None
                    and later.row_of.first == n for r in later.rows]
            values = ", ".join(SQL_TOKENS.sub(numbered_in(iter(row)),
                                              f"({', '.join('?' for _ in row)})")
                               for row in rows)
            parts.append(f"s{n}_0 AS ({st.row_of.head}{values}{st.row_of.tail} "
                         f"RETURNING id, {st.row_of.key})")
            continue
        own = st.sql.rstrip().rstrip(";")
        if st.if_new is not None and st.if_new.n in loose:
            own = _only_if(own, f"EXISTS (SELECT FROM s{st.if_new.n}_0)") or own
        for j, row in enumerate(st.rows):
            sql = SQL_TOKENS.sub(numbered_in(iter(row)), own)
            if n in refs and st.table in id_tables:
                sql += " RETURNING id"
            elif n in guarded:
                sql += " RETURNING 1"
            parts.append(f"s{n}_{j} AS ({sql})")
    picked = [f"(SELECT id FROM {source(n)}) AS r{n}" for n in sorted(refs)]
    # The guards in statement order, the first that fails named (as steps() meets them).
    said = _refused_reads(batch, numbered_in)
    whens = [_guard_fails(batch.statements[n], n, f"NOT EXISTS (SELECT FROM {source(n)})",
                          numbered_in, said)
             for n in sorted((refs - loose) | guarded)]
    if whens:
        picked.append(f"CASE {' '.join(whens)} END AS g")
    for k, read in enumerate(batch.reads):
        sql = SQL_TOKENS.sub(numbered_in(iter(read.params)), read.sql)
        picked.append(f"{JSON_ROWS.format(sql) if read.rows else f'({sql})'} AS v{k}")
    if len(args) > PG_MOST_ARGS:
        return None
    return f"WITH {', '.join(parts)} SELECT {', '.join(picked or ['1'])}", args


_WORD = re.compile(r"\(|\)|\bWHERE\b|\bRETURNING\b|\bORDER\s+BY\b|\bGROUP\s+BY\b|\bLIMIT\b"
                   r"|\bON\s+CONFLICT\b", re.IGNORECASE)
# An UPDATE, a DELETE, or an INSERT of a SELECT's rows (a record's reminders planned only if
# its guarded update changed it: Reminders.plan_into).
_CHANGES = re.compile(r"^\s*(?:UPDATE|DELETE|INSERT\s+INTO\s+\w+\s*\([^()]*\)\s*SELECT)\b",
                      re.IGNORECASE)


def _only_if(sql: str, condition: str) -> str | None:
    """An UPDATE, DELETE or INSERT … SELECT that writes only where `condition` holds too:
    its one WHERE (outside brackets and quotes) and-ed with it, up to what ends that WHERE
    (an INSERT's ORDER BY, ON CONFLICT …); None when there is no such WHERE, or a RETURNING
    follows it (where its condition ends is then not simply the end)."""
    if not _CHANGES.match(sql):
        return None
    # quotes and comments blanked out, same length, so positions hold
    plain = SQL_TOKENS.sub(lambda m: m.group() if m.group() == "?" else " " * len(m.group()),
                           sql)
    depth, where, end = 0, [], len(sql)
    for m in _WORD.finditer(plain):
        word = m.group().upper()
        depth += {"(": 1, ")": -1}.get(word, 0)
        if depth != 0:
            continue
        if word == "WHERE":
            where.append(m.start())
        elif word == "RETURNING":
            return None
        elif word not in "()" and end == len(sql):
            end = m.start()  # e.g. ON CONFLICT: a WHERE after it is its DO UPDATE's
    if len(where) != 1 or where[0] > end:
        return None
    after = f" {sql[end:]}" if end < len(sql) else ""
    return f"{sql[:where[0]]}WHERE {condition} AND ({sql[where[0] + 5:end].rstrip()}){after}"


# How the one statement fails when a guard refused it (migration 0038's taiqu_refused): its
# SQLSTATE, and its message "<kind> <statement number>".
PG_REFUSED = "TQ001"
REFUSED_DECLINED, REFUSED_UNCHANGED, REFUSED_REPLAY = "declined", "unchanged", "replay"


def _refused_reads(batch: Batch,
                   numbered_in: Callable[[Iterator[Any]], Callable[[re.Match[str]], str]]
                   ) -> str:
    """The batch's read_if_refused as one JSON text (an array of each read's rows), for
    taiqu_refused to carry out in the failure's DETAIL; "" when there are none."""
    if not batch.refused_reads:
        return ""
    each = [f"{JSON_ROWS.format(SQL_TOKENS.sub(numbered_in(iter(r.params)), r.sql))}::json"
            for r in batch.refused_reads]
    return f", json_build_array({', '.join(each)})::text"


def _guard_fails(st: Statement, n: int, fails: str,
                 numbered_in: Callable[[Iterator[Any]], Callable[[re.Match[str]], str]],
                 said: str = "") -> str:
    """The CASE branches that fail the one statement when statement n's guard fails: a
    `needed` one says Declined (its `declined_when` read, if any, asked in the same
    statement) or Unchanged, as steps() would, with the refused reads (`said`); any other
    (an insert that found its row there already) asks for the batch statement by statement,
    where `existing` applies."""
    def refused(kind: str) -> str:
        return f"WHEN {fails} THEN taiqu_refused({n}, '{kind}'{said})"

    if not st.needed:
        return f"WHEN {fails} THEN taiqu_refused({n}, '{REFUSED_REPLAY}')"
    if st.declined is None:
        return refused(REFUSED_UNCHANGED)
    if st.declined_when is None:
        return refused(REFUSED_DECLINED)
    # the read's one value as steps() takes it: true when it is (an int: not 0)
    read = SQL_TOKENS.sub(numbered_in(iter(st.declined_when[1])), st.declined_when[0])
    return (f"WHEN {fails} AND coalesce(({read})::boolean, false) "
            f"THEN taiqu_refused({n}, '{REFUSED_DECLINED}'{said}) "
            f"{refused(REFUSED_UNCHANGED)}")


def refusal(batch: Batch, message: str) -> Unchanged | None:
    """What a one statement failed by taiqu_refused means (None: run it statement by
    statement)."""
    kind, n = message.rsplit(" ", 1)
    st = batch.statements[int(n)]
    if kind == REFUSED_DECLINED and st.declined is not None:
        return Declined(int(n), st.declined[0], **dict(st.declined[1]))
    if kind == REFUSED_UNCHANGED:
        return Unchanged(int(n))
    return None


def _drive_sync(gen: Generator[Call, Any, Played], run: Any) -> Played:
    try:
        call = next(gen)
        while True:
            call = gen.send(run(call))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def play_sync(conn: sqlite3.Connection, batch: Batch) -> Played:
    """The batch in one transaction on a plain sqlite3 connection (in aiosqlite's worker
    thread: the whole transaction is one hop)."""

    def run(call: Call) -> Any:
        kind, sql, params = call
        if kind == "many":
            conn.executemany(sql, params)
            return None
        cur = conn.execute(sql, params)
        if kind == "rows":
            return cur.fetchall()
        if kind == "id":
            return cur.fetchone()[0]
        return cur.rowcount, cur.lastrowid

    conn.execute("BEGIN IMMEDIATE")
    try:
        ids = _drive_sync(steps(batch), run)
    except Unchanged:
        conn.execute("ROLLBACK")
        for read in batch.refused_reads:  # why, in the same hop (no write lock held)
            read.value = conn.execute(read.sql, read.params).fetchall()
        raise
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return ids


async def play(tx: Any, batch: Batch) -> Played:
    """The batch statement by statement on an open transaction (a Tx or a PgTx)."""
    gen = steps(batch)
    try:
        call = next(gen)
        while True:
            kind, sql, params = call
            if kind == "many":
                result: Any = await tx.executemany(sql, params)
            elif kind == "rows":
                result = await tx.fetchall(sql, params)
            elif kind == "id":
                result = (await tx.fetchone(sql, params))[0]
            else:
                rowid = await tx.execute(sql, params)
                result = (tx.rowcount, rowid)
            call = gen.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
