#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""window_ref.py: reference model of evwindow (event-time windows), for tests only.

  window_ref.py (--tumble D | --slide D --every E | --session-gap G) [options] <in >rows
  window_ref.py --generate N --seed S [--partitions P] [--late-pct X] >stream
Options are evwindow's (--ts-field ts, --key, --agg count, --out-of-orderness, --lateness,
--max-future, --meta-field _src, --late PATH|fd:N) plus --final. Durations: 250ms 5s 1m 2h 1d,
a bare number is seconds. A plain simulation that evwindow must match byte for byte:

INPUT. Lines end at \\n, a trailing \\r is dropped, lines of only spaces/tabs are skipped. A
line starting [ \\t]*{[ \\t]*"__evpipe"[ \\t]*: is a control line. Other lines must be JSON
objects as jansson reads them (invalid UTF-8, duplicate keys, NaN, integers outside int64,
overflowing reals, NUL or lone surrogates in strings: `parse`). Fields are top-level keys.
A record's first failing check is its dead letter: missing_ts; bad_ts (not an integer nor an
RFC 3339 string as lib/timefmt.c reads it, T/t/space, Z/z or +hh:mm, fraction truncated to ms,
:60 = next second; null, reals and digit strings are bad; outside years 0000..9999);
missing_key (absent; null is a value); bad_value (a sum/min/max/avg field present, not null,
not a number: booleans are not); future (--max-future > 0 and ts more than that ahead of its
partition's max before it; a partition's first record passes); late (all windows gone).
Dead letters change nothing, except that a late record still moves its partition's time.

TIME. Partition = (topic, partition) of the --meta-field object if it has a string topic and
an integer partition, else the one partition of records without one. A record is windowed
against the watermark as it was before it; then its partition's max moves and the watermark
becomes max(itself, min over partitions seen of max - ooo - 1). {"__evpipe":"watermark",
"ts":N} (N an integer) raises it to max(itself, N); end of input to +inf. --idle-timeout is
ignored: idleness is a matter of processing time, which the model does not simulate.

WINDOWS. Tumble [floor(t/D)*D, +D); slide: each [s, s+D) with s a multiple of E, s <= t < s+D
(E <= D). Session, per key: a record makes [t, t+G) and merges with every live session of its
key that overlaps OR TOUCHES it (Flink's TimeWindow.intersects), so events at most G apart
share one; states merge in order of start, then the record is added. [s, e) is due when
wm >= e-1, gone (state dropped) when wm >= e-1+L. A record is added to each of its windows
that is not gone, and is late only if all are gone (Flink: gone sliding windows miss it
silently); a session is gone only if the merged one would be. A state is emitted when due and
changed since its last row: right after the record that changed it, or when the watermark
reaches e-1. version = the records folded into that window and key (a merged session: the sum
of those it absorbed, plus the record). Rows of absorbed sessions stay in the change
stream with their old bounds: --final and final_rows(merged_sessions=True) leave them out.
State is per partition (ADR 0016): a window is one of (partition, start, end, key text), and a
key seen in two partitions has a window in each. Partitions are numbered in order of their
first record that is not dead before windowing (future and the checks above), records without
one being 0. After each record, control line and at the end, due changed states are emitted
in order of (end, partition number, start, key text), then gone ones dropped; key text = the
row's `"k1":v1,"k2":v2` part, compared by code point (= UTF-8 bytes). Control lines follow the rows they release, on both
outputs.

ROWS. {"window_start":S,"window_end":E,<keys in --key order>,<aggregates in --agg order>,
"version":V}, compact, S/E UTC "YYYY-MM-DD hh:mm:ss" floored to the second. With --msec-bounds,
or when a window size, --every or --session-gap is not whole seconds, "window_start_msec":MS
follows S and "window_end_msec":ME follows E: the bounds' milliseconds past S and E (0..999). Key values and
first/last are JSON values rewritten compactly: object keys in record order, strings escaped
only for " \\ and controls (\\n..., else \\u00xx), UTF-8 as is. NUMBERS: integers as integers;
reals (at any depth) as Python's repr: shortest digits that read back the same double, fixed
when the decimal exponent is in [-4, 16), with ".0" when integral ("3.0", "100.0", "0.1"),
else d[.ddd]e+XX/e-XX ("1e+16", "1e-05"); non-finite: null. count = records; sum = exact
integer while all values are integers and it fits int64, else the double sum of all values in
arrival order (a real); avg = that double sum / number of values (a real); min/max = the
value as it was, compared as doubles, ties to the earliest arrival; uniq = distinct canonical
texts (integral reals within +-2^63 as integers so 1 == 1.0, object keys sorted, recursively);
first/last = the value at the smallest/largest (event time, arrival). Absent or null values
count for count only; an aggregate over no values is null. Double sums of merged sessions may
differ in the last bit from arrival order: the generator's reals are multiples of 1/4 (exact).

DEAD LETTERS (--late, else messages on stderr): {"reason":R,"error":{"path":P,"message":M},
"raw":...,"source":...,"line":N,"at":0}: raw = the line without the provenance, as lib/meta.c
ev_meta_extract restores it (raw_b64 if not UTF-8), source = the provenance text (left out
without one), N = input line number, P = JSON pointer ("" for parse). Tests compare
reason, path and raw; "at" is wall time in evwindow.
"""
import argparse, base64, heapq, json, math, os, random, re, sys
from json.encoder import encode_basestring as jstr  # a JSON string, UTF-8 kept, \u00xx

INT64 = 2**63
MIN_MS, MAX_MS = -62167219200000, 253402300799999  # 0000-01-01 .. 9999-12-31T23:59:59.999Z
NUMERIC, FNS = ('sum', 'min', 'max', 'avg'), ('count', 'sum', 'min', 'max', 'avg', 'uniq', 'first', 'last')
CONTROL, BADSTR = re.compile(r'[ \t]*\{[ \t]*"__evpipe"[ \t]*:'), re.compile('[\0\ud800-\udfff]')

# ---- JSON in and out: what jansson accepts; numbers written as the docstring says ----------
def refuse(ok, value, why):
    if not ok:
        raise ValueError(why)
    return value

DECODER = json.JSONDecoder(
    parse_int=lambda s: refuse(-INT64 <= int(s) < INT64, int(s), 'integer out of range'),
    parse_float=lambda s: refuse(math.isfinite(float(s)), float(s), 'real number overflow'),
    parse_constant=lambda s: refuse(False, None, 'invalid token ' + s),
    object_pairs_hook=lambda kv: refuse(len(dict(kv)) == len(kv), dict(kv), 'duplicate key'))

def bad_strings(v):
    """True when a string or key holds NUL or a lone surrogate (jansson refuses both)."""
    if isinstance(v, str):
        return BADSTR.search(v) is not None
    if isinstance(v, list):
        return any(map(bad_strings, v))
    return isinstance(v, dict) and any(bad_strings(k) or bad_strings(x) for k, x in v.items())

def real(x):
    return repr(x) if math.isfinite(x) else 'null'

def dump(v):
    if v is None or v is True or v is False:
        return {None: 'null', True: 'true', False: 'false'}[v]
    if isinstance(v, (int, float)):
        return str(v) if isinstance(v, int) else real(v)
    if isinstance(v, str):
        return jstr(v)
    if isinstance(v, list):
        return '[' + ','.join(map(dump, v)) + ']'
    return '{' + ','.join(jstr(k) + ':' + dump(x) for k, x in v.items()) + '}'

def canon(v):
    """The text equal values share, for uniq."""
    if isinstance(v, float) and v.is_integer() and -INT64 <= v < INT64:
        return str(int(v))
    if isinstance(v, list):
        return '[' + ','.join(map(canon, v)) + ']'
    if isinstance(v, dict):
        return '{' + ','.join(jstr(k) + ':' + canon(v[k]) for k in sorted(v)) + '}'
    return dump(v)

def pointer(field):
    return '/' + field.replace('~', '~0').replace('/', '~1')

# ---- Time: Howard Hinnant's civil-date algorithms (proleptic Gregorian), lib/timefmt.c -----
def days_from_civil(y, m, d):
    y -= m <= 2
    era, yoe = y // 400, y % 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468

def fmt_time(ms):
    """Epoch ms as UTC "YYYY-MM-DD hh:mm:ss", floored to the second."""
    z, s = divmod(ms // 1000, 86400)
    era, doe = (z + 719468) // 146097, (z + 719468) % 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    m = mp + 3 if mp < 10 else mp - 9
    return '%04d-%02d-%02d %02d:%02d:%02d' % (yoe + era * 400 + (m <= 2), m, doy - (153 * mp + 2) // 5 + 1,
                                              s // 3600, s // 60 % 60, s % 60)

RFC3339 = re.compile(r'([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})'
                     r'(?:\.([0-9]+))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))')
MDAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

def rfc3339_ms(s):
    m = RFC3339.fullmatch(s)
    if not m:
        return None
    y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if not (1 <= mo <= 12 and 1 <= d <= MDAYS[mo - 1] and h <= 23 and mi <= 59 and sec <= 60) \
            or (mo == 2 and d == 29 and not leap) or (m.group(8) and (int(m.group(9)) > 23 or int(m.group(10)) > 59)):
        return None
    frac = int((m.group(7) or '')[:3].ljust(3, '0')) + (1000 if sec == 60 else 0)  # leap second: next one
    off = (int(m.group(9)) * 60 + int(m.group(10))) * (-1 if m.group(8) == '-' else 1) if m.group(8) else 0
    return (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + min(sec, 59) - off * 60) * 1000 + frac

def event_time(v):
    t = v if type(v) is int else rfc3339_ms(v) if isinstance(v, str) else None
    return t if t is not None and MIN_MS <= t <= MAX_MS else None

# ---- Aggregates -----------------------------------------------------------------------------
def contribution(fn, v, ts, seq):
    """What one record gives an aggregate, the same for each of its windows; None: nothing."""
    if fn == 'count':
        return 1
    if v is None:  # absent or null
        return None
    if fn in ('sum', 'avg'):
        return (float(v), v if type(v) is int else None)
    if fn == 'uniq':
        return canon(v)
    return (float(v) if fn in ('min', 'max') else ts, seq, v)  # ordered by number or time, then arrival

class Acc:
    """One aggregate of one window and key."""
    def __init__(self, fn):
        self.fn, self.n = fn, 0
        self.dsum, self.isum, self.all_int = 0.0, 0, True  # sum, avg
        self.seen, self.best = set(), None  # uniq; min, max, first, last: a contribution

    def add(self, c):
        self.n += 1
        if self.fn in ('sum', 'avg'):
            self.dsum += c[0]
            self.int_add(c[1])
        elif self.fn == 'uniq':
            self.seen.add(c)
        elif self.fn != 'count':
            self.take(c)

    def int_add(self, i):  # the exact sum, while every value is an integer and it fits int64
        self.all_int = self.all_int and i is not None and -INT64 <= self.isum + i < INT64
        self.isum = self.isum + i if self.all_int else 0

    def take(self, c):  # ties in the number go to the earliest arrival, ties in time as named
        b, fn = self.best, self.fn
        if b is None or (fn in ('min', 'first') and c[:2] < b[:2]) or (fn == 'last' and c[:2] > b[:2]) \
                or (fn == 'max' and (-c[0], c[1]) < (-b[0], b[1])):
            self.best = c

    def merge(self, o):
        self.n += o.n
        self.dsum += o.dsum
        self.int_add(o.isum if o.all_int else None)
        self.seen |= o.seen
        if o.best is not None:
            self.take(o.best)

    def text(self):
        if self.fn == 'count':
            return str(self.n)
        if self.n == 0:
            return 'null'
        if self.fn == 'uniq':
            return str(len(self.seen))
        if self.fn == 'sum':
            return str(self.isum) if self.all_int else real(self.dsum)
        return real(self.dsum / self.n) if self.fn == 'avg' else dump(self.best[2])

class State:
    """One window and key: its aggregates, version, and whether it changed since its last row."""
    def __init__(self, specs):
        self.accs, self.version, self.dirty = [Acc(fn) for _, fn, _ in specs], 0, False

# ---- The model ------------------------------------------------------------------------------
class Model:
    def __init__(self, o):
        self.o, self.rows, self.late, self.seq, self.wm = o, [], [], 0, -math.inf
        self.part_max = {}  # partition -> max event time
        self.scopes = {None: 0}  # partition -> its number, in order of first record
        self.states = {}  # (start, end, partition number, key text) -> State
        self.sessions = {}  # (partition number, key text) -> {(start, end)}: its live sessions
        self.fire_heap, self.drop_heap = [], []  # (end, number, start, key text) to emit / drop
        self.final = {}  # (start, end, key text) -> last row, for windows not merged away
        self.held = []  # [until, barrier line]: barriers waiting for their windows to be final

    def feed(self, raw, lineno):
        """One input line: bytes without the \\n."""
        raw = raw[:-1] if raw.endswith(b'\r') else raw
        if not raw.strip(b' \t'):
            return
        line, o = raw.decode('utf-8', 'surrogateescape'), self.o
        if CONTROL.match(line):
            return self.control(line)
        dead = lambda reason, path, msg: self.dead(reason, path, msg, line, lineno)
        try:
            raw.decode('utf-8')  # UnicodeDecodeError is a ValueError
            rec = DECODER.decode(line)
            if not isinstance(rec, dict) or ('\\u' in line and bad_strings(rec)):
                raise ValueError('not an object' if not isinstance(rec, dict) else 'NUL or lone surrogate')
        except (ValueError, RecursionError) as err:
            return dead('parse', '', 'not a JSON object: %s' % err)
        ptr = pointer(o.ts_field)
        if o.ts_field not in rec:
            return dead('missing_ts', ptr, 'the record has no event time')
        t = event_time(rec[o.ts_field])
        if t is None:
            return dead('bad_ts', ptr, 'the event time is neither epoch milliseconds nor an RFC 3339 date-time')
        for k in o.keys:
            if k not in rec:
                return dead('missing_key', pointer(k), 'the record has no value for a key field')
        for f in o.numeric:
            if f in rec and rec[f] is not None and type(rec[f]) not in (int, float):
                return dead('bad_value', pointer(f), 'not a number')
        m = rec.get(o.meta_field) if o.meta_field else None
        part = (m['topic'], m['partition']) if isinstance(m, dict) and isinstance(m.get('topic'), str) \
            and type(m.get('partition')) is int else None
        mx = self.part_max.get(part)
        if o.max_future and mx is not None and t - mx > o.max_future:
            return dead('future', ptr, 'the event time is too far ahead of its partition')
        self.seq += 1
        sc = self.scopes.setdefault(part, len(self.scopes))
        key = ','.join(jstr(k) + ':' + dump(rec[k]) for k in o.keys)
        if not self.window(t, sc, key, [contribution(fn, rec.get(f), t, self.seq) for _, fn, f in o.aggs]):
            dead('late', ptr, "the record's windows are past the allowed lateness")
        self.part_max[part] = t if mx is None else max(mx, t)
        self.advance(min(self.part_max.values()) - o.ooo - 1)

    def window(self, t, sc, key, contribs):
        """Add a record of partition number sc to those of its windows that are not gone; False
        when all are."""
        o, wm, changed = self.o, self.wm, []
        if o.gap:
            live = self.sessions.setdefault((sc, key), set())
            hits = sorted(w for w in live if w[0] <= t + o.gap and w[1] >= t)  # touching counts
            s, e = min([t] + [w[0] for w in hits]), max([t + o.gap] + [w[1] for w in hits])
            if e - 1 + o.lateness <= wm:
                return False
            olds = [self.states.pop(w + (sc, key)) for w in hits]
            st = olds[0] if olds else State(o.aggs)  # the earliest absorbs the others in order
            for old in olds[1:]:
                st.version += old.version
                for a, b in zip(st.accs, old.accs):
                    a.merge(b)
            for w in hits:
                self.final.pop(w + (key,), None)
                live.discard(w)
            self.states[(s, e, sc, key)], st.dirty = st, False  # False: queued again at its new end
            live.add((s, e))
            heapq.heappush(self.drop_heap, (e, sc, s, key))
            spans = [(s, e)]
        else:  # starts: the multiples of every in (t - size, t]
            spans = [(s, s + o.size) for s in range(t // o.every * o.every, t - o.size, -o.every)]
        for s, e in spans:
            if e - 1 + o.lateness <= wm:
                continue  # gone: this window misses the record
            st = self.states.get((s, e, sc, key))
            if st is None:
                st = self.states[(s, e, sc, key)] = State(o.aggs)
                heapq.heappush(self.drop_heap, (e, sc, s, key))
            for acc, c in zip(st.accs, contribs):
                if c is not None:
                    acc.add(c)
            st.version += 1
            changed.append((e, sc, s, key))
        for e, sc, s, key in sorted(changed):
            st = self.states[(s, e, sc, key)]
            if e - 1 <= wm:
                self.emit(s, e, key, st)
            elif not st.dirty:
                heapq.heappush(self.fire_heap, (e, sc, s, key))
            st.dirty = e - 1 > wm
        return bool(changed)

    def emit(self, s, e, key, st):
        row = '{"window_start":"%s"%s,"window_end":"%s"%s%s%s,"version":%d}' % (
            fmt_time(s), ',"window_start_msec":%d' % (s % 1000) if self.o.msec else '',
            fmt_time(e), ',"window_end_msec":%d' % (e % 1000) if self.o.msec else '',
            ',' + key if key else '',
            ''.join(',%s:%s' % (jstr(n), a.text()) for (n, _, _), a in zip(self.o.aggs, st.accs)), st.version)
        self.rows.append(row)
        self.final[(s, e, key)] = row

    def advance(self, wm):
        """Raise the watermark: emit the due changed states, then drop the gone ones."""
        if wm <= self.wm:
            return
        self.wm = wm
        while self.fire_heap and self.fire_heap[0][0] - 1 <= wm:
            e, sc, s, key = heapq.heappop(self.fire_heap)
            st = self.states.get((s, e, sc, key))
            if st is not None and st.dirty:
                st.dirty = False
                self.emit(s, e, key, st)
        while self.drop_heap and self.drop_heap[0][0] - 1 + self.o.lateness <= wm:
            e, sc, s, key = heapq.heappop(self.drop_heap)
            if self.states.pop((s, e, sc, key), None) is not None and self.o.gap:
                self.sessions[(sc, key)].discard((s, e))
        self.release()

    def release(self):
        """Forward the held barriers the watermark has freed, in order."""
        while self.held and self.held[0][0] <= self.wm:
            line = self.held.pop(0)[1]
            self.rows.append(line)
            self.late.append(line)

    def hold(self, line):
        """Without checkpoints a barrier waits until every window open when it came is final:
        the watermark past the newest one's end - 1 + lateness (sessions: the end of input)."""
        until = -math.inf
        if self.states:
            until = math.inf if self.o.gap else max(e for _, e, _, _ in self.states) - 1 + self.o.lateness
        if self.held:
            until = max(until, self.held[-1][0])
        self.held.append([until, line])
        self.release()

    def control(self, line):
        try:
            c = DECODER.decode(line)
            if c.get('__evpipe') == 'watermark' and type(c.get('ts')) is int:
                self.advance(c['ts'])
            if c.get('__evpipe') == 'barrier' and type(c.get('id')) is int:
                return self.hold(line)
        except (ValueError, AttributeError, RecursionError):
            pass  # malformed: only forwarded
        self.rows.append(line)
        self.late.append(line)

    def dead(self, reason, path, message, line, lineno):
        if not self.o.late_path:
            return sys.stderr.write('window_ref: line %d: %s%s: %s\n' % (
                lineno, reason, ' at ' + path if path else '', message))
        raw, source, mf = line, None, self.o.meta_field
        lead = len(line) - len(line.lstrip(' \t\r\n'))
        if mf and line.startswith('{%s:' % jstr(mf), lead):  # undo kin --meta-field
            start = lead + len(jstr(mf)) + 2
            try:
                meta, end = json.JSONDecoder().raw_decode(line, start)
                if isinstance(meta, dict) and not any(isinstance(v, (dict, list)) for v in meta.values()):
                    if meta.get('wrapped') is not True:
                        raw = line[:lead] + '{' + line[end + (line[end:end + 1] == ','):]
                    else:
                        rec = json.loads(line)
                        raw = rec['payload'] if isinstance(rec.get('payload'), str) \
                            else base64.b64decode(rec['payload_b64'], validate=True)
                    source = line[start:end]
            except (ValueError, KeyError, TypeError):
                raw = line
        raw = raw.encode('utf-8', 'surrogateescape') if isinstance(raw, str) else raw
        try:
            rawf = '"raw":' + jstr(raw.decode('utf-8'))
        except UnicodeDecodeError:
            rawf = '"raw_b64":"%s"' % base64.b64encode(raw).decode()
        self.late.append('{"reason":%s,"error":{"path":%s,"message":%s},%s%s,"line":%d,"at":0}' % (
            jstr(reason), jstr(path), jstr(message), rawf, ',"source":' + source if source else '', lineno))

    def finish(self):
        self.advance(math.inf)
        if self.o.final:  # the last row of each window and key still standing, sorted
            ms = 1000 if self.o.msec else 1  # the milliseconds sort only when rows show them
            self.rows = [x[5] for x in sorted((fmt_time(s), s % ms, k, fmt_time(e), e % ms, r)
                                              for (s, e, k), r in self.final.items())]

def bound_text(d, name):
    """A row's bound as text that sorts as the time: "YYYY-MM-DD hh:mm:ss[.mmm]"."""
    return d[name] + ('.%03d' % d[name + '_msec'] if name + '_msec' in d else '')

def final_rows(rows, keys, merged_sessions=False):
    """The highest version per (window_start, window_end, keys) of a change stream (lines or
    dicts; control lines skipped), sorted by window_start, key text, window_end; returned as
    given. merged_sessions: also drop rows whose bounds lie within another row's of the same
    key (sessions absorbed by a later merge); exact when the session gap is >= 1 s."""
    best = {}
    for r in rows:
        d = json.loads(r) if isinstance(r, str) else r
        if '__evpipe' not in d:
            k = (bound_text(d, 'window_start'), ','.join(jstr(f) + ':' + dump(d[f]) for f in keys),
                 bound_text(d, 'window_end'))
            if k not in best or d['version'] > best[k][0]['version']:
                best[k] = (d, r)
    if merged_sessions:  # by key, start, then end descending: contained = ends within the reach
        reach, keep = {}, {}
        for k in sorted(best, key=lambda k: (k[1], k[0], [-ord(c) for c in k[2]])):
            if reach.get(k[1], '') < k[2]:
                keep[k] = best[k]
            reach[k[1]] = max(reach.get(k[1], ''), k[2])
        best = keep
    return [best[k][1] for k in sorted(best)]

# ---- Command line ---------------------------------------------------------------------------
DURATION = re.compile(r'\s*\+?([0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)(ms|s|m|h|d)?')
UNITS = {None: 1000, 'ms': 1, 's': 1000, 'm': 60000, 'h': 3600000, 'd': 86400000}

def duration(text):  # lib/opts.c ev_opt_duration_ms(text, 1000)
    m = DURATION.fullmatch(text)
    if not m:
        raise argparse.ArgumentTypeError("invalid duration '%s'" % text)
    return int(float(m.group(1)) * UNITS[m.group(2)] + 0.5)

def aggregates(text):
    """"count,sum:value,n=uniq:user_id" -> [(output name, fn, field or None)], as lib/agg.c."""
    out = []
    for item in filter(None, text.split(',')):
        name, _, spec = item.partition('=') if '=' in item else (None, '', item)
        fn, colon, field = spec.partition(':')
        if fn not in FNS or (fn == 'count') == bool(colon) or (colon and not field) or name == '':
            raise argparse.ArgumentTypeError("invalid aggregate '%s'" % item)
        out.append((name or (fn + '_' + field if colon else fn), fn, field or None))
    if not out:
        raise argparse.ArgumentTypeError("no aggregate in '%s'" % text)
    return out

def parse_args(argv):
    p = argparse.ArgumentParser(prog='window_ref.py', description='Reference model of evwindow.')
    a = p.add_argument
    for opt, kw in [('--ts-field', {'default': 'ts'}), ('--tumble', {}), ('--slide', {}), ('--every', {}),
                    ('--session-gap', {'dest': 'gap'}), ('--out-of-orderness', {'dest': 'ooo', 'default': 0}),
                    ('--lateness', {'default': 0}), ('--max-future', {'default': 0}),
                    ('--idle-timeout', {'default': 0, 'help': 'ignored: needs processing time'})]:
        a(opt, **dict({'type': duration} if opt != '--ts-field' else {}, **kw))
    a('--key', dest='keys', default=[], type=lambda s: [k for k in s.split(',') if k])
    a('--msec-bounds', action='store_true', help='rows carry window_start_msec, window_end_msec')
    a('--agg', dest='aggs', type=aggregates, default=aggregates('count'))
    a('--meta-field', default='_src')
    a('--late', dest='late_path', metavar='PATH|fd:N')
    a('--final', action='store_true', help='only the final row of each window and key, sorted')
    a('--generate', type=int, metavar='N', help='print a seeded random stream of N records')
    a('--seed', type=int, default=1)
    a('--partitions', type=int, default=3)
    for opt, default in [('--late-pct', 1.0), ('--bad-pct', 0.5), ('--future-pct', 0.0)]:
        a(opt, type=float, default=default)
    o = p.parse_args(argv)
    if o.generate is not None:
        return o
    kinds = [o.tumble is not None, o.slide is not None or o.every is not None, o.gap is not None]
    if sum(kinds) != 1 or (kinds[1] and None in (o.slide, o.every)):
        p.error('want one of --tumble D, --slide D --every E, --session-gap G')
    o.size, o.every = (o.tumble, o.tumble) if kinds[0] else (o.slide, o.every)
    if min(x for x in (o.size, o.every, o.gap) if x is not None) <= 0 or (kinds[1] and o.every > o.slide):
        p.error('window sizes must be > 0, and --every at most --slide')
    o.msec = o.msec_bounds or any(x % 1000 for x in (o.size, o.every, o.gap) if x is not None)
    o.numeric = list(dict.fromkeys(f for _, fn, f in o.aggs if fn in NUMERIC))  # checked in this order
    names = ['window_start', 'window_end', 'version'] + o.keys + [n for n, _, _ in o.aggs]
    if len(set(names)) != len(names):
        p.error('output field names must be distinct')
    return o

def run(argv, data):
    """The model over data (bytes or str): (rows and forwarded control lines, late lines)."""
    m = Model(parse_args(argv))
    lines = (data.encode() if isinstance(data, str) else data).split(b'\n')
    for n, raw in enumerate(lines[:-1] if lines[-1] == b'' else lines, 1):
        m.feed(raw, n)
    m.finish()
    return m.rows, m.late

# ---- Generator ------------------------------------------------------------------------------
def generate(n, seed=1, partitions=3, late_pct=1.0, bad_pct=0.5, future_pct=0.0):
    """Lines of a seeded stream, from Random(seed).random() only (stable across Pythons): events
    keyed by event_type (partition = its index % partitions, as producers key by it) on one
    clock (~50 ms apart; rare pauses of up to 10 min end sessions); event time up to 5 s behind
    the clock, 2% up to 60 s behind (late within 30 s lateness or not), late_pct% 2..12 min
    behind (beyond the lateness of 1m windows), future_pct% two days ahead; user_id strings,
    integers, integral reals or absent; value integers, multiples of 1/4, null or absent; 10%
    RFC 3339 times; bad_pct% bad lines; a barrier every 1000 records, a watermark every 5000."""
    r = random.Random(seed).random
    types = ['click', 'view', 'purchase', 'signup', 'search']
    clock, offsets, out = 1732406400000, [0] * partitions, []
    for i in range(n):
        if i and i % 1000 == 0:
            out.append('{"__evpipe":"barrier","id":%d,"ts":%d}' % (i // 1000, clock))
        if i and i % 5000 == 0:
            out.append('{"__evpipe":"watermark","ts":%d}' % (clock - 600000))
        clock += int(r() * 100) + (int(r() * 600000) if r() < 0.0005 else 0)
        et = types[int(r() ** 2 * len(types))]
        part = types.index(et) % partitions
        src = {'topic': 'events', 'partition': part, 'offset': offsets[part], 'ts': clock}
        offsets[part] += 1
        u = r() * 100
        ts = clock - (120000 + int(r() * 600000) if u < late_pct else int(r() * 60000) if u < late_pct + 2
                      else int(r() * 5000))
        ts = ts if r() * 100 >= future_pct else clock + 172800000
        rec, u = {'_src': src, 'event_type': et}, r()
        if u < 0.95:
            rec['user_id'] = 'u%d' % int(r() * 200) if u >= 0.06 else int(r() * 200) if u >= 0.01 \
                else float(int(r() * 200))  # 1.0 and 1 are one user for uniq
        u = r()
        if u < 0.95:
            rec['value'] = int(r() * 1000) - 100 if u < 0.7 else int(r() * 4000) / 4 - 100 if u < 0.85 else None
        if r() < 0.1:  # RFC 3339, in UTC or at +01:00
            off = 3600000 if r() < 0.5 else 0
            ts = fmt_time(ts + off).replace(' ', 'T') + '.%03d' % ((ts + off) % 1000) + ('+01:00' if off else 'Z')
        rec['ts'] = ts
        if r() * 100 < bad_pct:
            kind = int(r() * 7)
            if kind == 0:
                del rec['ts']
            elif kind == 1:
                rec['ts'] = ['yesterday', 1.7e12, True, '1732406400000'][int(r() * 4)]
            elif kind == 2:
                del rec['event_type']
            elif kind == 3:
                rec['value'] = 'abc'
            elif kind == 4:  # a Kafka message that is not an object, as kin wraps it
                rec = {'_src': dict(src, wrapped=True), 'payload': '[1,2,3]'}
            else:
                out.append('{"event_type":"click","ts":' if kind == 5 else '')
                continue
        out.append(json.dumps(rec, separators=(',', ':')))
    return out

def main(argv):
    o, w = parse_args(argv), sys.stdout.buffer
    if o.generate is not None:
        lines = generate(o.generate, o.seed, o.partitions, o.late_pct, o.bad_pct, o.future_pct)
        w.write(''.join(l + '\n' for l in lines).encode())
        return 0
    rows, late = run(argv, sys.stdin.buffer.read())
    w.write(''.join(l + '\n' for l in rows).encode('utf-8', 'surrogateescape'))
    if o.late_path:
        spec = o.late_path
        with os.fdopen(int(spec[3:]), 'wb') if spec.startswith('fd:') else open(spec, 'ab') as f:
            f.write(''.join(l + '\n' for l in late).encode('utf-8', 'surrogateescape'))
    return 0

if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
