#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""window_ref_test.py: hand-computed cases for the reference model of evwindow (window_ref.py).

Run: python3 tests/window_ref_test.py   (standard library unittest)
Times are small epoch ms (1970-01-01) so that windows can be worked out by hand; t(s) is s
seconds. Unless a test says otherwise: no key, --agg count, out-of-orderness 0, lateness 0.
"""
import datetime, json, os, subprocess, sys, unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import window_ref as W  # noqa: E402

FIX = os.path.join(HERE, 'fixtures', 'evwindow')
ALL = 'count,sum:v,min:v,max:v,avg:v,uniq:u,first:u,last:u'


def t(seconds):
    return int(seconds * 1000)


def rec(ts, **fields):
    """A record line with fields in the order given, then ts."""
    return json.dumps(dict(fields, ts=ts), separators=(',', ':'))


def src(part, offset, ts, **fields):
    """A record with Kafka provenance first, as kin --meta-field _src writes it."""
    return json.dumps(dict({'_src': {'topic': 't', 'partition': part, 'offset': offset, 'ts': 0}},
                           **fields, ts=ts), separators=(',', ':'))


def model(args, lines):
    """Run the model: (rows and control lines, late output) as lists of str."""
    return W.run(args + ['--late', 'late.ndjson'], ''.join(l + '\n' for l in lines))


def brief(rows):
    """Rows as (start second, end second, count, version) and control lines as their kind."""
    out = []
    for r in rows:
        d = json.loads(r)
        if '__evpipe' in d:
            out.append(d['__evpipe'])
        else:
            sec = lambda s: int((datetime.datetime.fromisoformat(s) - datetime.datetime(1970, 1, 1)).total_seconds())
            out.append((sec(d['window_start']), sec(d['window_end']), d['count'], d['version']))
    return out


def reasons(late):
    return [json.loads(l).get('reason') or json.loads(l)['__evpipe'] for l in late]


class Aggregates(unittest.TestCase):
    def test_every_aggregate_with_nulls_ties_and_renames(self):
        lines = [rec(t(1), k='a', v=1, u='x'),
                 rec(t(3), k='a', v=2.5, u=1),
                 rec(t(2), k='a', v=None, u=1.0),  # null v: counted, no value; 1.0 is the uniq value 1
                 rec(t(3), k='a', u='y'),  # no v; ties at t(3) with u=1: last takes the later arrival
                 rec(t(4), k='b', v=7)]  # no u: uniq, first and last over no values are null
        rows, late = model(['--tumble', '10s', '--key', 'k', '--agg', ALL + ',n=count,fv=first:v,lv=last:v'], lines)
        self.assertEqual(rows, [
            '{"window_start":"1970-01-01 00:00:00","window_end":"1970-01-01 00:00:10","k":"a","count":4,'
            '"sum_v":3.5,"min_v":1,"max_v":2.5,"avg_v":1.75,"uniq_u":3,"first_u":"x","last_u":"y",'
            '"n":4,"fv":1,"lv":2.5,"version":4}',
            '{"window_start":"1970-01-01 00:00:00","window_end":"1970-01-01 00:00:10","k":"b","count":1,'
            '"sum_v":7,"min_v":7,"max_v":7,"avg_v":7.0,"uniq_u":null,"first_u":null,"last_u":null,'
            '"n":1,"fv":7,"lv":7,"version":1}'])
        self.assertEqual(late, [])

    def test_number_formatting(self):
        def one(values, agg):
            rows, _ = model(['--tumble', '10s', '--agg', agg], [rec(t(1), v=v) for v in values])
            return rows[0].split('"%s":' % agg.replace(':', '_'))[1].rsplit(',"version"', 1)[0]
        self.assertEqual(one([1, 2], 'sum:v'), '3')  # integers: an integer
        self.assertEqual(one([1.5, 1.5], 'sum:v'), '3.0')  # any real: a real, ".0" when integral
        self.assertEqual(one([1, 0.5], 'sum:v'), '1.5')
        self.assertEqual(one([0.1, 0.2], 'sum:v'), '0.30000000000000004')  # doubles, arrival order
        self.assertEqual(one([2, 4], 'avg:v'), '3.0')  # avg is always a real
        self.assertEqual(one([100.0], 'max:v'), '100.0')
        self.assertEqual(one([1e16], 'max:v'), '1e+16')
        self.assertEqual(one([1e-05], 'min:v'), '1e-05')
        self.assertEqual(one([1, 1.0], 'min:v'), '1')  # ties: the earliest arrival's value
        self.assertEqual(one([1.0, 1], 'min:v'), '1.0')
        self.assertEqual(one([2**62, 2**62], 'sum:v'), '9.223372036854776e+18')  # past int64: a real
        self.assertEqual(one([-2**62, -2**62], 'sum:v'), '-9223372036854775808')  # still fits
        self.assertEqual(one([{'b': 1.0, 'a': [2]}], 'first:v'), '{"b":1.0,"a":[2]}')  # key order kept

    def test_uniq_canonical_values(self):
        values = [1, 1.0, '1', {'a': 1, 'b': 2}, {'b': 2.0, 'a': 1}, [1.0], [1], 2**60, float(2**60), True, None]
        rows, _ = model(['--tumble', '10s', '--agg', 'uniq:v'], [rec(t(1), v=v) for v in values])
        # {1, "1", {"a":1,"b":2}, [1], 2^60, true}; null is no value
        self.assertIn('"uniq_v":6,', rows[0])
        self.assertEqual(W.canon({'b': [1.0, 'x'], 'a': 1e300}), '{"a":1e+300,"b":[1,"x"]}')

    def test_sum_and_avg_need_numbers(self):
        lines = [rec(t(1), v='3'), rec(t(2), v=True), rec(t(3), v=None), rec(t(4), u='x')]
        rows, late = model(['--tumble', '10s', '--agg', 'count,avg:v,uniq:u'], lines)
        self.assertEqual([json.loads(l)['error']['path'] for l in late], ['/v', '/v'])
        self.assertEqual(reasons(late), ['bad_value', 'bad_value'])
        self.assertIn('"count":2,"avg_v":null,"uniq_u":1,', rows[0])
        rows, late = model(['--tumble', '10s', '--agg', 'count,uniq:v,first:v'], lines)  # any JSON value
        self.assertIn('"count":4,"uniq_v":2,"first_v":"3",', rows[0])  # "3" and true


class Windows(unittest.TestCase):
    def test_tumbling_fires_when_the_watermark_reaches_end_minus_1(self):
        rows, _ = model(['--tumble', '10s'], [rec(t(1)), rec(t(9.999)), rec(t(10)), rec(t(10.001)), rec(-1)])
        # t(10) makes wm = 9999: [0, 10) fires; t(-1 ms) belongs to [-10, 0), gone by then: late
        self.assertEqual(brief(rows), [(0, 10, 2, 2), (10, 20, 2, 2)])
        self.assertEqual(brief(model(['--tumble', '10s'], [rec(t(1)), rec(t(9.999))])[0]), [(0, 10, 2, 2)])

    def test_sliding_windows_and_flinks_lateness_rule(self):
        lines = [rec(t(1)),  # windows [-5, 5) and [0, 10)
                 rec(t(12)),  # wm 11.999: both fire and are gone (lateness 0)
                 rec(t(9)),  # [0, 10) is gone, [5, 15) is not: counted there, not late
                 rec(t(3))]  # [-5, 5) and [0, 10) both gone: late
        rows, late = model(['--slide', '10s', '--every', '5s'], lines)
        self.assertEqual(brief(rows), [(-5, 5, 1, 1), (0, 10, 1, 1), (5, 15, 2, 2), (10, 20, 1, 1)])
        self.assertEqual(reasons(late), ['late'])
        self.assertEqual(json.loads(late[0])['raw'], lines[3])

    def test_sliding_rows_of_one_record_come_in_order_of_end(self):
        rows, _ = model(['--slide', '3s', '--every', '1s', '--lateness', '1m'],
                        [rec(t(10)), rec(t(5))])  # t(5): windows [3,6) [4,7) [5,8), all due at once
        self.assertEqual(brief(rows), [(3, 6, 1, 1), (4, 7, 1, 1), (5, 8, 1, 1),
                                       (8, 11, 1, 1), (9, 12, 1, 1), (10, 13, 1, 1)])

    def test_sessions_merge_touching_and_bridged_sessions(self):
        args = ['--session-gap', '10s', '--key', 'k', '--lateness', '60s', '--agg', 'count,sum:v']
        lines = [rec(t(0), k='a', v=1),  # [0, 10)
                 rec(t(25), k='a', v=2),  # [25, 35); wm 24.999: [0, 10) fires
                 rec(t(50), k='b', v=3),  # wm 49.999: [25, 35) fires
                 rec(t(12), k='a', v=4),  # within lateness, touches nothing: [12, 22), due at once
                 rec(t(10), k='a', v=5)]  # [10, 20) touches [0, 10) and overlaps [12, 22): [0, 22) v2
        rows, late = model(args, lines)
        self.assertEqual([json.loads(r)['k'] for r in rows], ['a', 'a', 'a', 'a', 'b'])
        self.assertEqual(brief(rows), [(0, 10, 1, 1), (25, 35, 1, 1), (12, 22, 1, 1), (0, 22, 3, 3),
                                       (50, 60, 1, 1)])
        self.assertIn('"sum_v":10,', rows[3])
        final = [(0, 22, 3, 3), (25, 35, 1, 1), (50, 60, 1, 1)]
        self.assertEqual(brief(model(args + ['--final'], lines)[0]), final)
        self.assertEqual(brief(W.final_rows(rows, ['k'], merged_sessions=True)), final)
        self.assertEqual(brief(W.final_rows(rows, ['k'])), [(0, 10, 1, 1)] + final[:1] + [(12, 22, 1, 1)] + final[1:])
        self.assertEqual(late, [])

    def test_session_beyond_lateness_is_late_unless_it_touches_a_live_one(self):
        rows, late = model(['--session-gap', '10s'], [rec(t(0)), rec(t(30)), rec(t(15)), rec(t(20))])
        # wm 29.999 after t(30): [0, 10) fired and is gone; [15, 25) alone would be gone too
        # (24.999 <= 29.999): late; [20, 30) is as well, but it touches the live [30, 40): [20, 40)
        self.assertEqual(reasons(late), ['late'])
        self.assertEqual(json.loads(late[0])['raw'], rec(t(15)))
        self.assertEqual(brief(rows), [(0, 10, 1, 1), (20, 40, 2, 2)])

    def test_out_of_order_within_the_bound(self):
        rows, late = model(['--tumble', '10s', '--out-of-orderness', '5s'],
                           [rec(t(1)), rec(t(9)), rec(t(12)), rec(t(8)), rec(t(16))])
        # after t(12), wm = 6.999: [0, 10) is still open for t(8); t(16) moves wm to 10.999
        self.assertEqual(brief(rows), [(0, 10, 3, 3), (10, 20, 2, 2)])
        self.assertEqual(late, [])

    def test_late_within_lateness_is_version_2_beyond_is_a_late_envelope(self):
        lines = [rec(t(1)), rec(t(11)), rec(t(2)), rec(t(16)), rec(t(3))]
        rows, late = model(['--tumble', '10s', '--lateness', '5s'], lines)
        # t(11): wm 10.999, [0, 10) fires; t(2) updates it at once (gone at 14.999): version 2;
        # t(16) drops it, so t(3) is late
        self.assertEqual(brief(rows), [(0, 10, 1, 1), (0, 10, 2, 2), (10, 20, 2, 2)])
        env = json.loads(late[0])
        self.assertEqual((env['reason'], env['error']['path'], env['raw'], env['line']), ('late', '/ts', lines[4], 5))
        self.assertEqual(list(env), ['reason', 'error', 'raw', 'line', 'at'])

    def test_end_of_input_fires_everything(self):
        rows, _ = model(['--tumble', '1h', '--key', 'k', '--out-of-orderness', '3h'],
                        [rec(t(7200), k='b'), rec(t(1), k='b'), rec(t(2), k='a')])  # wm stays < 0
        self.assertEqual(brief(rows), [(0, 3600, 1, 1), (0, 3600, 1, 1), (7200, 10800, 1, 1)])
        self.assertEqual([json.loads(r)['k'] for r in rows], ['a', 'b', 'b'])  # same window: key text order


    def test_sub_second_windows_carry_the_milliseconds_of_their_bounds(self):
        lines = [rec(100), rec(300), rec(350), rec(-100)]  # -100: [-250, 0), before 1970
        rows, late = model(['--tumble', '250ms', '--out-of-orderness', '1s'], lines)
        self.assertEqual([(json.loads(r)['window_start'], json.loads(r)['window_start_msec'],
                           json.loads(r)['window_end'], json.loads(r)['window_end_msec'],
                           json.loads(r)['count']) for r in rows],
                         [('1969-12-31 23:59:59', 750, '1970-01-01 00:00:00', 0, 1),
                          ('1970-01-01 00:00:00', 0, '1970-01-01 00:00:00', 250, 1),
                          ('1970-01-01 00:00:00', 250, '1970-01-01 00:00:00', 500, 2)])
        self.assertTrue(rows[0].startswith('{"window_start":"1969-12-31 23:59:59","window_start_msec":750,'
                                           '"window_end":"1970-01-01 00:00:00","window_end_msec":0,'))
        # whole-second sizes: no such fields, unless asked (sessions: exact bounds)
        rows, _ = model(['--tumble', '1s'], lines[:3])
        self.assertNotIn('msec', rows[0])
        rows, _ = model(['--session-gap', '1s', '--msec-bounds'], lines[:3])
        self.assertEqual([(json.loads(r)['window_start_msec'], json.loads(r)['window_end_msec']) for r in rows],
                         [(100, 350)])
        rows, _ = model(['--slide', '1s', '--every', '500ms'], lines[:1])
        self.assertEqual([json.loads(r)['window_start_msec'] for r in rows], [500, 0])


class Time(unittest.TestCase):
    def test_per_partition_watermarks(self):
        lines = [src(0, 0, 1000), src(1, 0, 1000), src(0, 1, 25000), src(1, 1, 9000),
                 '{"__evpipe":"barrier","id":1,"ts":0}', src(1, 2, 21000)]
        rows, _ = model(['--tumble', '10s'], lines)
        # partition 1 holds the watermark at 8.999 until its 21 s record: [0, 10) fires after
        # the barrier came; the barrier waits for [0, 10) and [20, 30), final at the end; without
        # a key each partition has its own window (state is per partition)
        self.assertEqual(brief(rows), [(0, 10, 1, 1), (0, 10, 2, 2), (20, 30, 1, 1), (20, 30, 1, 1), 'barrier'])
        # with another meta field all records are one partition: 25 s fires [0, 10) at once; the
        # barrier waits for [20, 30)
        rows, late = model(['--tumble', '10s', '--meta-field', 'x'], lines)
        self.assertEqual(brief(rows), [(0, 10, 2, 2), (20, 30, 2, 2), 'barrier'])
        self.assertEqual(reasons(late), ['late', 'barrier'])  # 9 s came after [0, 10) was gone

    def test_watermark_never_goes_back_and_a_new_partition_does_not_pull_it(self):
        lines = [src(0, 0, 20000), src(1, 0, 1000), src(1, 1, 2000)]
        rows, late = model(['--tumble', '10s'], lines)
        # wm 19.999 after the first record; partition 1 (min 1 s) cannot lower it: 1 s and 2 s are late
        self.assertEqual(reasons(late), ['late', 'late'])
        self.assertEqual(brief(rows), [(20, 30, 1, 1)])

    def test_max_future(self):
        lines = [rec(1000), rec(999999999999), rec(2000), src(0, 0, 888888888888)]
        rows, late = model(['--tumble', '10s', '--max-future', '1h'], lines)
        # the far record is refused and moves nothing; a partition's first record is always accepted
        self.assertEqual(reasons(late), ['future'])
        self.assertEqual(brief(rows)[0], (0, 10, 2, 2))
        self.assertEqual(len(rows), 2)

    def test_control_lines(self):
        lines = [rec(t(1)), '{"__evpipe":"barrier","id":1,"ts":5}', '{"__evpipe":"watermark","ts":9999}',
                 rec(t(2)), '{"__evpipe":"watermark","ts":5}', ' {"__evpipe" :"assign","x":[1]}',
                 '{"__evpipe":"watermark","ts":"x"}', '{"__evpipe":"watermark",']
        rows, late = model(['--tumble', '10s'], lines)
        # the watermark line fires [0, 10) before it is forwarded, and makes it final: the
        # barrier, held back until then, goes first; t(2) is then late; the rest is forwarded
        # unchanged, to both outputs
        self.assertEqual(rows, [rows[0], lines[1], lines[2]] + lines[4:])
        self.assertEqual(brief(rows[0:1]), [(0, 10, 1, 1)])
        self.assertEqual(late, lines[1:3] + [late[2]] + lines[4:])
        self.assertEqual(reasons(late[2:3]), ['late'])

    def test_rfc3339(self):
        self.assertEqual(W.rfc3339_ms('1970-01-01T00:00:00Z'), 0)
        self.assertEqual(W.rfc3339_ms('2024-11-24T10:00:00.123Z'), 1732442400123)  # tests/unit/test_timefmt.c
        self.assertEqual(W.rfc3339_ms('2024-11-24T11:00:00.123+01:00'), 1732442400123)
        self.assertEqual(W.rfc3339_ms('2024-11-24 05:00:00.1-05:00'), 1732442400100)
        self.assertEqual(W.rfc3339_ms('2024-11-24t10:00:00.5+01:00'), 1732438800500)
        self.assertEqual(W.rfc3339_ms('2024-11-24T10:00:00.99999z'), 1732442400999)  # truncated to ms
        self.assertEqual(W.rfc3339_ms('2016-12-31T23:59:60Z'), W.rfc3339_ms('2017-01-01T00:00:00Z'))
        self.assertEqual(W.rfc3339_ms('2024-02-29T00:00:00Z'), 1709164800000)
        for bad in ['2023-02-29T00:00:00Z', '2024-11-24T10:00:00', '2024-11-24T24:00:00Z', '2024-11-24T10:00Z',
                    '2024-11-24T10:00:00.Z', '2024-11-24T10:00:00+1:00', '2024-13-01T00:00:00Z', '١٩٧٠-01-01T00:00:00Z']:
            self.assertIsNone(W.rfc3339_ms(bad), bad)
        lines = [rec('2024-11-24T10:00:00.5+01:00'), rec(1732438810000), rec('2024-11-24T09:00:00Z'),
                 rec(1732438800000.0), rec('1732438800000'), rec(None), rec(True), rec('10000-01-01T00:00:00Z')]
        rows, late = model(['--tumble', '1m'], lines)
        self.assertEqual(rows, ['{"window_start":"2024-11-24 09:00:00","window_end":"2024-11-24 09:01:00",'
                                '"count":3,"version":3}'])
        self.assertEqual(reasons(late), ['bad_ts'] * 5)

    def test_calendar(self):
        for days in range(-800000, 2933000, 997):
            d = datetime.date(1970, 1, 1) + datetime.timedelta(days) if days > -719162 else None
            if d:
                self.assertEqual(W.days_from_civil(d.year, d.month, d.day), days)
                self.assertEqual(W.fmt_time(days * 86400000 + 3723999), d.isoformat() + ' 01:02:03')
        self.assertEqual(W.fmt_time(-1), '1969-12-31 23:59:59')  # floored
        self.assertEqual(W.fmt_time(W.MIN_MS), '0000-01-01 00:00:00')

    def test_durations(self):
        self.assertEqual([W.duration(d) for d in ['250ms', '5s', '1m', '2h', '1d', '1.5s', '2', '0.0005s']],
                         [250, 5000, 60000, 7200000, 86400000, 1500, 2000, 1])
        for bad in ['5 s', '-1s', '1w', 's', '']:
            self.assertRaises(Exception, W.duration, bad)


class DeadLetters(unittest.TestCase):
    def test_reasons_paths_and_raw(self):
        lines = ['not json', '[1]', '{"ts":1,"ts":2}', '{"ts":NaN}', '{"ts":1,"v":99999999999999999999}',
                 '{"ts":1,"v":1e999}', '{"ts":1,"s":"a\\u0000b"}', '{"k":1}', rec(t(1)), rec(t(1), k=None, v='x'),
                 rec(t(1), k=1, v=[]), rec(t(1), **{'a/b': 1})]
        rows, late = model(['--tumble', '10s', '--key', 'k', '--agg', 'count,sum:v'], lines)
        envs = [json.loads(l) for l in late]
        self.assertEqual([(e['reason'], e['error']['path']) for e in envs],
                         [('parse', '')] * 7 + [('missing_ts', '/ts'), ('missing_key', '/k'), ('bad_value', '/v'),
                                                ('bad_value', '/v'), ('missing_key', '/k')])
        self.assertEqual([e['raw'] for e in envs], lines)
        self.assertEqual([e['line'] for e in envs], list(range(1, 13)))
        self.assertEqual(rows, [])
        _, late = model(['--tumble', '10s', '--key', 'a/b~'], [rec(t(1))])
        self.assertEqual(json.loads(late[0])['error']['path'], '/a~1b~0')

    def test_provenance_is_taken_out_of_raw(self):
        wrapped = '{"_src":{"topic":"t","partition":0,"offset":7,"ts":0,"wrapped":true},"payload":"[1,2"}'
        lines = [src(0, 0, 'x', k=1), wrapped, '{"_src":{"topic":"t","partition":0,"offset":8,"ts":0}}',
                 b'{"k":"\xff","ts":1}'.decode('latin-1')]
        data = ''.join(l + '\n' for l in lines).encode('latin-1')
        _, late = W.run(['--tumble', '10s', '--late', 'x'], data)
        envs = [json.loads(l) for l in late]
        self.assertEqual([e['reason'] for e in envs], ['bad_ts', 'missing_ts', 'missing_ts', 'parse'])
        self.assertEqual(envs[0]['raw'], '{"k":1,"ts":"x"}')
        self.assertEqual(envs[0]['source'], {'topic': 't', 'partition': 0, 'offset': 0, 'ts': 0})
        self.assertEqual(envs[1]['raw'], '[1,2')
        self.assertEqual(envs[2]['raw'], '{}')
        self.assertEqual(envs[3]['raw_b64'], 'eyJrIjoi/yIsInRzIjoxfQ==')
        self.assertNotIn('source', envs[3])

    def test_blank_lines_crlf_and_no_final_newline(self):
        rows, late = W.run(['--tumble', '10s', '--late', 'x'], b'{"ts":1}\r\n\n \t\r\n{"ts":2}')
        self.assertEqual(brief(rows), [(0, 10, 2, 2)])
        self.assertEqual(late, [])

    def test_every_record_is_accounted_for(self):
        lines = W.generate(20000, seed=3, partitions=2, late_pct=2, bad_pct=2)
        rows, late = model(['--tumble', '1m', '--key', 'event_type', '--agg', 'count,sum:value',
                            '--out-of-orderness', '5s', '--lateness', '30s', '--final'], lines)
        records = [l for l in lines if l.strip() and not l.startswith('{"__evpipe"')]
        dead = [l for l in late if '"reason"' in l]
        self.assertEqual(sum(json.loads(r)['count'] for r in rows) + len(dead), len(records))
        self.assertGreater(reasons(dead).count('late'), 200)


class GeneratorAndCli(unittest.TestCase):
    def test_generator_is_seeded(self):
        a, b, c = W.generate(3000, 5), W.generate(3000, 5), W.generate(3000, 6)
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)
        parts = {json.loads(l)['_src']['partition'] for l in a if l.startswith('{"_src"')}
        self.assertEqual(parts, {0, 1, 2})
        self.assertEqual(len([l for l in a if not l.startswith('{"__evpipe"')]), 3000)
        # a fixed seed gives a fixed stream whatever the Python version (random() only)
        self.assertEqual(W.generate(1, 1), ['{"_src":{"topic":"events","partition":2,"offset":0,"ts":1732406400013},'
                                            '"event_type":"purchase","user_id":"u157","value":-72,"ts":1732406397536}'])

    def test_versions_under_lateness_on_a_generated_stream(self):
        lines = W.generate(20000, seed=11)
        rows, late = model(['--tumble', '10s', '--key', 'event_type', '--out-of-orderness', '5s',
                            '--lateness', '30s'], lines)
        # a late update's row has a higher version (the records folded) than the row before it
        seen, updates = {}, 0
        for r in rows:
            if '"version"' in r:
                d = json.loads(r)
                k = (d['window_start'], d['event_type'])
                if k in seen:
                    self.assertGreater(d['version'], seen[k])
                    updates += 1
                seen[k] = d['version']
                self.assertEqual(d['version'], d['count'])
        self.assertGreater(updates, 20)
        final = W.final_rows(rows, ['event_type'])
        self.assertEqual(final, model(['--tumble', '10s', '--key', 'event_type', '--out-of-orderness', '5s',
                                       '--lateness', '30s', '--final'], lines)[0])

    def test_final_sessions_equal_the_final_of_the_change_stream(self):
        lines = W.generate(30000, seed=4)
        args = ['--session-gap', '20s', '--key', 'event_type', '--agg', 'count,sum:value,uniq:user_id,last:user_id',
                '--out-of-orderness', '5s', '--lateness', '1m']
        rows, _ = model(args, lines)
        final, _ = model(args + ['--final'], lines)
        self.assertEqual(W.final_rows(rows, ['event_type'], merged_sessions=True), final)
        self.assertLess(len(final), len(W.final_rows(rows, ['event_type'])))  # merges happened

    def test_cli_golden_fixture(self):
        """tests/fixtures/evwindow/input.ndjson with --tumble 1m, checked by hand
        (--key event_type --out-of-orderness 5s --lateness 30s; T = 2024-11-24 10:00:00Z;
        partition 0 = clicks, partition 1 = views):
        - lines 1-4: partition 1 is at T+20 s, so wm = T+14.999 s: nothing fires although
          partition 0 is at T+64 s; the barrier (line 5) waits until the windows open then,
          up to [10:01, 10:02), are final (T+149.999 s): only the end of input gets there, so
          it comes last, on both outputs (without checkpoints: ADR 0014);
        - line 6 (view T+70 s): min(64, 70) - 5 s - 1 ms: wm T+58.999, [10:00, 10:01) still open;
        - line 7 (click T+66 s, value null): wm T+60.999 >= T+59.999: [10:00, 10:01) fires, click
          (T+1 s value 3 u1; T+30 s value 4.5 u1): count 2, sum 7.5, min 3, max 4.5, avg 3.75,
          uniq 1; then view (T+20 s, RFC 3339 at +01:00, value 2.5 u2);
        - line 8 (view T+40 s) is within lateness (gone at T+89.999 s): view version 2, count 2,
          sum 3.5, min 1, avg 1.75, uniq 2, first u2 (T+20 s), last u4 (T+40 s);
        - line 9 has no ts: missing_ts, raw without _src; line 10, a watermark at T+95 s, drops
          [10:00, 10:01) and is forwarded; so line 11 (click T+59 s) is late;
        - line 14 is blank; line 15's value "abc" is bad_value;
        - end of input: [10:01, 10:02) click (T+64 s value 1 u3, T+66 s null u1): sum 1 (an
          integer), avg 1.0, uniq 2, first u3, last u1; view (T+70 s value 2): avg 2.0;
          [10:02, 10:03) view (T+120.25 s value 5 user 7, T+121 s value 6 user 7.0): sum 11,
          avg 5.5, uniq 1 (7 == 7.0), first 7, last 7.0."""
        late = os.path.join(FIX, '.late.tmp')
        try:
            with open(os.path.join(FIX, 'input.ndjson'), 'rb') as f:
                out = subprocess.run([sys.executable, os.path.join(HERE, 'window_ref.py'), '--tumble', '1m',
                                      '--key', 'event_type', '--agg', 'count,sum:value,min:value,max:value,'
                                      'avg:value,uniq:user_id,first:user_id,last:user_id', '--out-of-orderness',
                                      '5s', '--lateness', '30s', '--late', late], stdin=f, capture_output=True,
                                     check=True)
            with open(os.path.join(FIX, 'tumble-1m.rows'), 'rb') as f:
                self.assertEqual(out.stdout, f.read())
            with open(late, 'rb') as got, open(os.path.join(FIX, 'tumble-1m.late'), 'rb') as want:
                self.assertEqual(got.read(), want.read())
            self.assertEqual(out.stderr, b'')
        finally:
            if os.path.exists(late):
                os.unlink(late)

    def test_cli_usage_errors(self):
        script = os.path.join(HERE, 'window_ref.py')
        for args in [[], ['--tumble', '1m', '--slide', '1m', '--every', '1s'], ['--slide', '1m'],
                     ['--slide', '1s', '--every', '2s'], ['--tumble', '0s'], ['--tumble', '1m', '--agg', 'count:x'],
                     ['--tumble', '1m', '--agg', 'median:x'], ['--tumble', '1m', '--agg', 'count,n=count,n=sum:v']]:
            p = subprocess.run([sys.executable, script] + args, input=b'', capture_output=True)
            self.assertEqual(p.returncode, 2, args)
            self.assertEqual(p.stdout, b'')


if __name__ == '__main__':
    unittest.main()
