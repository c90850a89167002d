/*
 * camera_fixed.c -- the recording-control core, with everything camera_naive.c gets wrong
 * fixed: a complete implementation of bwcsim SPEC section 4 in C99.
 *
 * Theory of operation
 * -------------------
 * One table of states (docked, standby, pre_buffer, recording, off) and six triggers moves the
 * camera (fire() below); *why* a trigger fires is decided by the holds:
 *
 *   - an open required window -- a required activity from its start to its end plus post_s.
 *     Windows are reference-counted by activity_id, so overlapping and nested activities keep
 *     ONE recording, and no further trigger, duplicate or end of another activity stops it
 *     (R-NOSPLIT). This is fix 1: the naive core stopped at the first activity_end.
 *   - a manual hold, taken by "button start" or an accepted device signal, released by
 *     "button stop" -- which is refused while a required window is open (R-STOP, fix 2).
 *
 * reconcile() compares "should record" with the state after every change and fires activate
 * or release; it is the only place that does. An allowed "deactivate" pauses the windows; a
 * reactivate, a new required activity, a signal or a button press resumes, with the same
 * incident id.
 *
 * Time is passed in, never read. Boot completion, the end of a post_s tail, segment rollover,
 * storage filling up, low battery and battery depletion are *computed* deadlines
 * (next_timer()); battery and storage are piecewise linear and advanced lazily to each event
 * (advance()). A 12-hour shift costs what its events cost.
 *
 * The pre-buffer (R-BUF): the buffer runs from buffer_since, the entry into pre_buffer. On
 * activation at now the recording starts at now - min(prebuffer_s, now - buffer_since), and
 * the buffered part is written at once (it counts against storage; if it does not all fit,
 * the most recent seconds are kept).
 *
 * Late triggers (R-LATE, R-MISS; fix 3): a trigger carries ts, when its activity really began.
 * The camera keeps its own history -- when it could not record and why, its closed footage,
 * its ended deactivations -- so a trigger that arrives late is answered with a
 * missed_required_recording alert for each cause that held since ts (docked, battery,
 * not_ready, storage), and a late_trigger alert whose span is the capture time no footage and
 * no deactivation covers. Docking, booting, a flat battery or full storage during a required
 * activity raise missed_required_recording at once (fix 4: the naive core said nothing), and
 * a camera that finishes booting while a window is open goes straight to recording (fix 5).
 *
 * Every inbound id is remembered with its answer, per sender, for the redelivery window: a QoS 1
 * redelivery gets the same answer and has no second effect (R-IDEM). Every state change,
 * accepted, refused or repeated message, alert, deactivation, recording opened and segment
 * closed goes into a hash-chained audit log (R-AUDIT, audit.c) -- the reference's entries,
 * at the same points, with the same data, so the bench verifies both alike. In front of all this,
 * gate.c decides who may command the camera (SPEC 14: signatures, roles, sequence numbers,
 * clock skew), and every table a message can grow is capped (R-BOUND).
 *
 * The arithmetic follows the bwcsim reference controller (controller/camera.py) operation for
 * operation, so both give the same verdict on every scenario.
 */
#define _POSIX_C_SOURCE 200809L

#include "audit.h"
#include "bwc.h"
#include "codec.h"
#include "gate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const camera_impl_name = "bwc-fixed (C99, cJSON, libcrypto)";

#define EPS 1e-9      /* float noise in the camera's own arithmetic */
#define SPAN_EPS 1e-6 /* touching spans join, slivers vanish */

typedef enum { CAUSE_NONE = -1, CAUSE_DOCKED, CAUSE_NOT_READY, CAUSE_BATTERY, CAUSE_STORAGE } cause_t;
static const char *const CAUSE_NAMES[] = {"docked", "not_ready", "battery", "storage"};

typedef struct { double a, b; } span_t;
typedef struct { span_t *v; size_t n, cap; } spanvec;

static void spans_push(spanvec *s, double a, double b)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        s->v = xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = (span_t){a, b};
}

static int span_cmp(const void *x, const void *y)
{
    const span_t *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    return p->b < q->b ? -1 : p->b > q->b;
}

/* Sorted, disjoint union in place; empty spans dropped, touching spans joined. */
static void spans_union(spanvec *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].b > s->v[i].a)
            s->v[n++] = s->v[i];
    qsort(s->v, n, sizeof *s->v, span_cmp);
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (out && s->v[i].a <= s->v[out - 1].b + SPAN_EPS) {
            if (s->v[i].b > s->v[out - 1].b)
                s->v[out - 1].b = s->v[i].b;
        } else {
            s->v[out++] = s->v[i];
        }
    }
    s->n = out;
}

/* [a, b) minus the sorted, disjoint spans of minus, appended to out. */
static void spans_subtract(double a, double b, const spanvec *minus, spanvec *out)
{
    double cur = a;
    size_t j = 0;
    while (j < minus->n && minus->v[j].b <= cur)
        j++;
    for (size_t k = j; k < minus->n && minus->v[k].a < b; k++) {
        if (minus->v[k].a > cur + SPAN_EPS)
            spans_push(out, cur, minus->v[k].a);
        cur = pymax(cur, minus->v[k].b);
        if (minus->v[k].b > b)
            break;
    }
    if (cur < b - SPAN_EPS)
        spans_push(out, cur, b);
}

/* --------------------------------------------------------------------- the camera */

typedef struct {
    char *aid;
    bool has_tail; /* false while the activity runs; then the end of its post_s tail */
    double tail;
} window_t;

typedef struct {
    char *aid, *name;
} activity_t;

typedef struct {
    char *sender; /* the verified principal, NULL in auth none: ids are each sender's own */
    msgid_t id;
    bool ok;
    char *error;
    double at; /* when it was first answered: the redelivery window counts from here */
} reply_t;

typedef struct {
    double since;
    cause_t cause;
} history_t;

typedef struct {
    char *id, *incident;
    double start, buffer_s, seg_start;
    strvec reasons;
    spanvec segments;
} recording_t;

struct camera {
    const setup_t *setup;
    const params_t *p;
    topics_t topics;
    outbox_t *out;
    cam_state state;
    double now, since, buffer_since;
    bool has_boot_end;
    double boot_end;
    double charge, charge_t, used, used_t, upload_t;
    bool low_armed;
    /* closed recordings not yet offloaded, oldest first: size and uploaded so far */
    spanvec uploads;
    size_t uploads_head;
    activity_t *activities; /* every accepted running activity */
    size_t n_activities, cap_activities;
    window_t *windows; /* open required windows, in the order they opened */
    size_t n_windows, cap_windows;
    strvec ended;
    bool manual_hold;
    bool deactivated;
    double deact_since;
    char *paused_incident;
    recording_t *rec;
    strvec next_reasons;
    long incidents, recordings;
    reply_t *replies; /* oldest first, from replies_head on: expiry and the cap pop the oldest */
    size_t replies_head, n_replies, cap_replies;
    gate_t *gate;
    /* the last state report: state, since and the revision of the open windows */
    bool reported;
    cam_state reported_state;
    double reported_since;
    unsigned long windows_rev, reported_rev;
    /* what the camera knows of its own past, for late triggers */
    history_t *history;
    size_t n_history, cap_history;
    spanvec footage, paused;
    bool has_dropped;
    double dropped_at, dropped_from, dropped_to;
    audit_log *audit;
};

const bool camera_keeps_audit = true;

/* One audit entry; takes the data's fields. */
static void log_entry(camera_t *c, double at, const char *kind, jobject *data)
{
    audit_append(c->audit, at, kind, jo_finish(data));
}

/* Who sent (or claimed to send) a message, when known, in its entry. */
static void log_origin(camera_t *c, double at, const char *kind, jobject *data, const char *by)
{
    if (by)
        jo_str(data, "by", by);
    log_entry(c, at, kind, data);
}

static double storage_free(const camera_t *c) { return pymax(0.0, c->p->storage_s - c->used); }

static long window_find(const camera_t *c, const char *aid)
{
    for (size_t i = 0; i < c->n_windows; i++)
        if (strcmp(c->windows[i].aid, aid) == 0)
            return (long)i;
    return -1;
}

static void window_remove(camera_t *c, size_t i)
{
    c->windows_rev++;
    free(c->windows[i].aid);
    memmove(c->windows + i, c->windows + i + 1, (c->n_windows - i - 1) * sizeof *c->windows);
    c->n_windows--;
}

static void window_append(camera_t *c, const char *aid)
{
    c->windows_rev++;
    if (c->n_windows == c->cap_windows) {
        c->cap_windows = c->cap_windows ? 2 * c->cap_windows : 4;
        c->windows = xrealloc(c->windows, c->cap_windows * sizeof *c->windows);
    }
    c->windows[c->n_windows++] = (window_t){xstrdup(aid), false, 0.0};
}

static long activity_find(const camera_t *c, const char *aid)
{
    for (size_t i = 0; i < c->n_activities; i++)
        if (strcmp(c->activities[i].aid, aid) == 0)
            return (long)i;
    return -1;
}

/* --------------------------------------------------------------------- output */

static void emit_alert(camera_t *c, const char *kind, const char *cause, const char *aid,
                       const double *span)
{
    jobject o = {0};
    jo_str(&o, "kind", kind);
    jo_str(&o, "cause", cause);
    jo_str(&o, "activity_id", aid);
    log_entry(c, c->now, "alert", &o);
    outbox_add(c->out, c->topics.alert, encode_alert(kind, c->now, cause, aid, span), false);
}

static void alert_missed(camera_t *c, cause_t cause)
{
    if (cause == CAUSE_NONE)
        return;
    for (size_t i = 0; i < c->n_windows; i++)
        emit_alert(c, "missed_required_recording", CAUSE_NAMES[cause], c->windows[i].aid, NULL);
}

/* The retained state, whenever the state, its since or the set of open windows changed. */
static void report(camera_t *c)
{
    if (c->reported && c->reported_state == c->state && c->reported_since == c->since &&
        c->reported_rev == c->windows_rev)
        return;
    c->reported = true;
    c->reported_state = c->state;
    c->reported_since = c->since;
    c->reported_rev = c->windows_rev;
    char **active = xrealloc(NULL, c->n_windows * sizeof *active);
    for (size_t i = 0; i < c->n_windows; i++)
        active[i] = c->windows[i].aid;
    outbox_add(c->out, c->topics.state,
               encode_state(c->state, c->since, active, c->n_windows, c->charge, storage_free(c),
                            c->setup->signed_auth ? "signed" : "none"),
               true);
    free(active);
}

static void publish_recording(camera_t *c, recording_t *r, double end, bool final, bool open)
{
    /* A recording that closes at the very instant of a rollover has nothing in its next
     * segment: publish the final metadata without inventing an empty file. */
    if (end > r->seg_start + EPS || r->segments.n == 0)
        spans_push(&r->segments, r->seg_start, end);
    outbox_add(c->out, c->topics.recording,
               encode_recording(c->setup->camera_id, r->id, r->incident, r->start, end,
                                r->buffer_s, r->reasons.v, r->reasons.n,
                                (const double *)r->segments.v, r->segments.n, final, open),
               false);
    jobject o = {0};
    jo_str(&o, "recording", r->id);
    jo_int(&o, "segment", (long long)r->segments.n);
    jo_bool(&o, "final", final);
    /* Logged when it happens, not at the segment's end: a rollover due before the activation
       closes a segment ending in the past, and the log's times never go back (R-AUDIT). */
    log_entry(c, c->now, "segment_close", &o);
    r->seg_start = end;
}

/* --------------------------------------------------------------------- the state table */

typedef enum { T_DOCK, T_UNDOCK, T_BOOT_DONE, T_ACTIVATE, T_RELEASE, T_DEPLETE } trigger_t;

static cause_t cannot_record_cause(const camera_t *c)
{
    switch (c->state) {
    case ST_PRE_BUFFER: return storage_free(c) <= EPS ? CAUSE_STORAGE : CAUSE_NONE;
    case ST_DOCKED: return CAUSE_DOCKED;
    case ST_STANDBY: return CAUSE_NOT_READY;
    case ST_OFF: return CAUSE_BATTERY;
    default: return CAUSE_NONE;
    }
}

static void history_push(camera_t *c)
{
    if (c->n_history == c->cap_history) {
        c->cap_history = c->cap_history ? 2 * c->cap_history : 16;
        c->history = xrealloc(c->history, c->cap_history * sizeof *c->history);
    }
    c->history[c->n_history++] = (history_t){c->now, cannot_record_cause(c)};
}

static void enter_recording(camera_t *c)
{
    double now = c->now;
    double wanted = pymin(c->p->prebuffer_s, now - c->buffer_since);
    double buffer_s = pymax(0.0, pymin(wanted, storage_free(c)));
    c->has_dropped = wanted > buffer_s + EPS;
    if (c->has_dropped) {
        c->dropped_at = now;
        c->dropped_from = now - wanted;
        c->dropped_to = now - buffer_s;
    }
    c->used += buffer_s;
    recording_t *r = xrealloc(NULL, sizeof *r);
    memset(r, 0, sizeof *r);
    if (c->paused_incident) {
        r->incident = c->paused_incident;
        c->paused_incident = NULL;
    } else {
        r->incident = xprintf("%s-%ld", c->setup->camera_id, ++c->incidents);
    }
    r->id = xprintf("%s-r%ld", c->setup->camera_id, ++c->recordings);
    r->start = r->seg_start = now - buffer_s;
    r->buffer_s = buffer_s;
    for (size_t i = 0; i < c->next_reasons.n; i++)
        if (sv_find(&r->reasons, c->next_reasons.v[i]) < 0)
            sv_push(&r->reasons, c->next_reasons.v[i]);
    for (size_t i = 0; i < c->n_windows; i++)
        if (sv_find(&r->reasons, c->windows[i].aid) < 0)
            sv_push(&r->reasons, c->windows[i].aid);
    c->rec = r;
    jobject o = {0};
    jo_str(&o, "recording", r->id);
    jo_str(&o, "incident", r->incident);
    jo_num(&o, "buffer_s", buffer_s);
    log_entry(c, now, "recording_open", &o);
}

static void exit_recording(camera_t *c)
{
    recording_t *r = c->rec;
    publish_recording(c, r, c->now, true, false);
    /* The whole recording is one upload: its space is freed only when all of it is confirmed,
     * so evidence is never half-deleted (R-STORE). */
    double size = 0.0;
    for (size_t i = 0; i < r->segments.n; i++)
        size += r->segments.v[i].b - r->segments.v[i].a;
    spans_push(&c->uploads, size, 0.0);
    /* Recordings close in time order: the merged footage only ever grows at its end. */
    if (c->footage.n && r->start <= c->footage.v[c->footage.n - 1].b + EPS)
        c->footage.v[c->footage.n - 1].b = pymax(c->now, c->footage.v[c->footage.n - 1].b);
    else
        spans_push(&c->footage, r->start, c->now);
    free(r->id);
    free(r->incident);
    sv_clear(&r->reasons);
    free(r->reasons.v);
    free(r->segments.v);
    free(r);
    c->rec = NULL;
}

/* The one place the state changes: exit actions, the new state, entry actions, history. */
static void fire(camera_t *c, trigger_t trigger)
{
    static const cam_state dest[] = {ST_DOCKED, ST_STANDBY, ST_PRE_BUFFER, ST_RECORDING,
                                     ST_PRE_BUFFER, ST_OFF};
    cam_state from = c->state, to = dest[trigger];
    switch (from) {
    case ST_STANDBY: c->has_boot_end = false; break;
    case ST_DOCKED:
        if (c->charge > c->p->low_battery_s)
            c->low_armed = true;
        break;
    case ST_RECORDING: exit_recording(c); break;
    default: break;
    }
    c->state = to;
    switch (to) {
    case ST_PRE_BUFFER: c->buffer_since = c->now; break;
    case ST_STANDBY:
        c->has_boot_end = true;
        c->boot_end = c->now + c->p->boot_s;
        break;
    case ST_DOCKED: c->upload_t = c->now; break;
    case ST_RECORDING: enter_recording(c); break;
    default: break;
    }
    c->since = c->now;
    jobject o = {0};
    jo_str(&o, "from", state_name(from));
    jo_str(&o, "to", state_name(to));
    log_entry(c, c->now, "state", &o);
    history_push(c);
}

/* --------------------------------------------------------------------- holds */

/* by: what ended it (reactivate, activity_start:<id>, the manual reason, windows_closed). */
static void end_deactivation(camera_t *c, const char *by)
{
    jobject o = {0};
    jo_str(&o, "by", by);
    jo_num(&o, "since", c->deact_since);
    log_entry(c, c->now, "deactivation_end", &o);
    spans_push(&c->paused, c->deact_since, c->now);
    c->deactivated = false;
}

static void reconcile(camera_t *c)
{
    if (c->deactivated && c->n_windows == 0)
        end_deactivation(c, "windows_closed");
    if (c->n_windows == 0) {
        free(c->paused_incident);
        c->paused_incident = NULL;
    }
    bool holding = c->manual_hold || (c->n_windows > 0 && !c->deactivated);
    if (c->state == ST_RECORDING) {
        if (!holding)
            fire(c, T_RELEASE);
    } else if (c->state == ST_PRE_BUFFER && holding && storage_free(c) > EPS) {
        fire(c, T_ACTIVATE);
    }
}

static void add_reason(camera_t *c, const char *reason)
{
    strvec *to = c->rec ? &c->rec->reasons : &c->next_reasons;
    if (!c->rec || sv_find(to, reason) < 0)
        sv_push(to, reason);
}

/* --------------------------------------------------------------------- time */

static double rate(const camera_t *c)
{
    switch (c->state) {
    case ST_RECORDING: return -c->p->record_drain;
    case ST_DOCKED: return c->p->charge_rate;
    case ST_OFF: return 0.0;
    default: return -1.0;
    }
}

static void upload(camera_t *c, double t)
{
    double budget = (t - c->upload_t) * c->p->upload_speed;
    c->upload_t = t;
    while (budget > 0 && c->uploads_head < c->uploads.n) {
        span_t *item = &c->uploads.v[c->uploads_head]; /* a: size, b: uploaded */
        double take = pymin(budget, item->a - item->b);
        item->b += take;
        budget -= take;
        if (item->b >= item->a - EPS) { /* confirmed: only now is the space freed (R-STORE) */
            c->uploads_head++;
            c->used = pymax(0.0, c->used - item->a);
        }
    }
}

/* Battery, storage and uploads forward to t (no event falls inside). */
static void advance(camera_t *c, double t)
{
    double dt = t - c->charge_t;
    if (dt > 0) {
        double charge = c->charge + rate(c) * dt;
        c->charge = pymin(c->p->battery_s, pymax(0.0, charge));
        c->charge_t = t;
        if (c->state == ST_RECORDING)
            c->used = pymin(c->p->storage_s, c->used + (t - c->used_t));
        else if (c->state == ST_DOCKED)
            upload(c, t);
    }
    c->used_t = t;
    c->now = t;
}

typedef enum { K_NONE, K_BOOT, K_LOW_BATTERY, K_DEPLETE, K_ROLLOVER, K_STORAGE_FULL, K_TAIL } timer_kind;

/* The next internal event; on a tie the one considered first wins. */
static timer_kind next_timer(const camera_t *c, double *at)
{
    timer_kind best = K_NONE;
    const params_t *p = c->p;
#define CONSIDER(when, kind)                          \
    do {                                              \
        double w_ = (when);                           \
        if (best == K_NONE || w_ < *at) {             \
            *at = w_;                                 \
            best = (kind);                            \
        }                                             \
    } while (0)
    if (c->state == ST_STANDBY && c->has_boot_end)
        CONSIDER(c->boot_end, K_BOOT);
    if (c->state == ST_STANDBY || c->state == ST_PRE_BUFFER || c->state == ST_RECORDING) {
        double drain = c->state == ST_RECORDING ? p->record_drain : 1.0;
        /* low_battery_s = 0 means no warning: battery_empty announces depletion alone. */
        if (c->low_armed && c->charge > p->low_battery_s && p->low_battery_s > 0)
            CONSIDER(c->charge_t + (c->charge - p->low_battery_s) / drain, K_LOW_BATTERY);
        CONSIDER(c->charge_t + c->charge / drain, K_DEPLETE);
    }
    if (c->state == ST_RECORDING) {
        CONSIDER(c->rec->seg_start + p->segment_max_s, K_ROLLOVER);
        CONSIDER(c->used_t + (p->storage_s - c->used), K_STORAGE_FULL);
    }
    for (size_t i = 0; i < c->n_windows; i++)
        if (c->windows[i].has_tail)
            CONSIDER(c->windows[i].tail, K_TAIL);
#undef CONSIDER
    return best;
}

static void run_timers(camera_t *c, double now)
{
    for (;;) {
        double at = 0.0;
        timer_kind kind = next_timer(c, &at);
        if (kind == K_NONE || at > now)
            break;
        advance(c, pymax(at, c->now));
        switch (kind) {
        case K_BOOT:
            fire(c, T_BOOT_DONE);
            reconcile(c); /* a window already open: straight to recording */
            alert_missed(c, cannot_record_cause(c));
            break;
        case K_LOW_BATTERY:
            c->charge = c->p->low_battery_s;
            c->low_armed = false;
            emit_alert(c, "low_battery", NULL, NULL, NULL);
            break;
        case K_DEPLETE:
            c->charge = 0.0;
            c->low_armed = false;
            emit_alert(c, "battery_empty", NULL, NULL, NULL);
            c->manual_hold = false;
            fire(c, T_DEPLETE);
            alert_missed(c, CAUSE_BATTERY);
            break;
        case K_STORAGE_FULL:
            c->used = c->p->storage_s;
            emit_alert(c, "storage_full", NULL, NULL, NULL);
            c->manual_hold = false;
            fire(c, T_RELEASE);
            alert_missed(c, CAUSE_STORAGE);
            break;
        case K_ROLLOVER: {
            /* A buffer longer than segment_max_s puts the first deadline before the activation:
               the segment still ends at its deadline (R-ROLL), the next falls due at once. */
            double due = c->rec->seg_start + c->p->segment_max_s;
            publish_recording(c, c->rec, due < c->now ? due : c->now, false, false);
            break;
        }
        case K_TAIL:
            for (size_t i = c->n_windows; i-- > 0;)
                if (c->windows[i].has_tail && c->windows[i].tail <= c->now)
                    window_remove(c, i);
            reconcile(c);
            break;
        default: break;
        }
    }
    advance(c, pymax(now, c->now));
}

/* --------------------------------------------------------------------- late triggers */

/* Alert whatever keeps a new required window from being covered (R-MISS, R-LATE). */
static void announce_start(camera_t *c, const char *aid, bool has_ts, double ts)
{
    bool causes[4] = {false, false, false, false};
    cause_t order[4];
    size_t n_causes = 0;
    spanvec late = {0};
    double now = c->now;
    if (has_ts && ts < now - EPS) {
        spanvec covered = {0};
        for (size_t i = 0; i < c->footage.n; i++)
            spans_push(&covered, c->footage.v[i].a, c->footage.v[i].b);
        if (c->rec)
            spans_push(&covered, c->rec->start, now);
        for (size_t i = 0; i < c->paused.n; i++)
            spans_push(&covered, c->paused.v[i].a, c->paused.v[i].b);
        if (c->has_dropped && c->dropped_at == now)
            spans_push(&covered, c->dropped_from, c->dropped_to);
        if (c->deactivated)
            spans_push(&covered, c->deact_since, now);
        spans_union(&covered);
        /* The camera's history over [ts, now), oldest first. */
        size_t first = c->n_history;
        while (first > 0) {
            first--;
            if (c->history[first].since <= ts)
                break;
        }
        for (size_t i = first; i < c->n_history; i++) {
            double a = pymax(c->history[i].since, ts);
            double end = i + 1 < c->n_history ? c->history[i + 1].since : now;
            if (!(end > a + EPS))
                continue;
            cause_t cause = c->history[i].cause;
            if (cause == CAUSE_NONE) {
                spans_subtract(a, end, &covered, &late);
            } else if (!causes[cause]) {
                causes[cause] = true;
                order[n_causes++] = cause;
            }
        }
        free(covered.v);
    }
    cause_t current = c->rec ? CAUSE_NONE : cannot_record_cause(c);
    if (current != CAUSE_NONE && !causes[current])
        order[n_causes++] = current;
    for (size_t i = 0; i < n_causes; i++)
        emit_alert(c, "missed_required_recording", CAUSE_NAMES[order[i]], aid, NULL);
    if (late.n) {
        double s[2] = {late.v[0].a, late.v[late.n - 1].b};
        emit_alert(c, "late_trigger", NULL, aid, s);
    }
    free(late.v);
}

/* --------------------------------------------------------------------- events */

static const char *activity_start(camera_t *c, const event_t *ev)
{
    const activity_rule *rule = policy_rule(&c->setup->policy, ev->activity);
    static char why[256];
    if (!rule) {
        snprintf(why, sizeof why, "unknown_activity: %s", ev->activity);
        return why;
    }
    const char *aid = ev->activity_id;
    if (activity_find(c, aid) >= 0)
        return NULL; /* already running: never restarts or splits anything (R-NOSPLIT) */
    long cap = c->setup->limits.max_open_activities;
    if ((long)c->n_activities >= cap || (window_find(c, aid) < 0 && (long)c->n_windows >= cap)) {
        snprintf(why, sizeof why, "too_many_activities: %ld open", cap); /* R-BOUND */
        return why;
    }
    if (c->n_activities == c->cap_activities) {
        c->cap_activities = c->cap_activities ? 2 * c->cap_activities : 4;
        c->activities = xrealloc(c->activities, c->cap_activities * sizeof *c->activities);
    }
    c->activities[c->n_activities++] = (activity_t){xstrdup(aid), xstrdup(ev->activity)};
    long e = sv_find(&c->ended, aid);
    if (e >= 0)
        sv_remove_at(&c->ended, (size_t)e);
    if (rule->kind != KIND_REQUIRED)
        return NULL; /* prohibited never starts a recording; discretionary is the officer's */
    long w = window_find(c, aid);
    if (w >= 0)
        window_remove(c, (size_t)w); /* a restart inside its own tail reopens the window */
    window_append(c, aid);
    if (c->deactivated) {
        char *by = xprintf("activity_start:%s", aid);
        end_deactivation(c, by);
        free(by);
    }
    add_reason(c, aid);
    reconcile(c);
    announce_start(c, aid, ev->has_ts, ev->ts);
    sv_clear(&c->next_reasons);
    return NULL;
}

static const char *activity_end(camera_t *c, const event_t *ev)
{
    static char why[256];
    const char *aid = ev->activity_id;
    long i = activity_find(c, aid);
    if (i < 0) {
        if (sv_find(&c->ended, aid) >= 0)
            return NULL;
        snprintf(why, sizeof why, "unknown_activity: %s", aid);
        return why;
    }
    const activity_rule *rule = policy_rule(&c->setup->policy, c->activities[i].name);
    free(c->activities[i].aid);
    free(c->activities[i].name);
    c->activities[i] = c->activities[--c->n_activities];
    /* Ended ids are remembered (a repeated end is acked, not refused) for the newest
     * max_remembered only (R-BOUND). */
    long known = sv_find(&c->ended, aid);
    if (known >= 0)
        sv_remove_at(&c->ended, (size_t)known);
    sv_push(&c->ended, aid);
    if ((long)c->ended.n > c->setup->limits.max_remembered)
        sv_remove_at(&c->ended, 0);
    long w = window_find(c, aid);
    if (w >= 0) {
        double post = rule ? rule->post_s : 0.0;
        if (post > 0) {
            c->windows[w].has_tail = true;
            c->windows[w].tail = c->now + post;
        } else {
            window_remove(c, (size_t)w);
        }
        reconcile(c);
    }
    return NULL;
}

static const char *manual_start(camera_t *c, const char *reason)
{
    if (c->state != ST_PRE_BUFFER && c->state != ST_RECORDING)
        return "not_ready";
    if (c->state == ST_PRE_BUFFER && storage_free(c) <= EPS)
        return "storage_full";
    if (c->deactivated)
        end_deactivation(c, reason);
    c->manual_hold = true;
    add_reason(c, reason);
    reconcile(c);
    sv_clear(&c->next_reasons);
    return NULL;
}

static const char *stop(camera_t *c)
{
    if (c->n_windows > 0 && !c->deactivated)
        return "required_activity"; /* R-STOP: the recording continues */
    c->manual_hold = false;
    reconcile(c);
    return NULL;
}

static const char *deactivate(camera_t *c, const event_t *ev)
{
    if (c->n_windows == 0)
        return stop(c); /* outside a required window it is a plain stop */
    const policy_t *pol = &c->setup->policy;
    if (!policy_lists(pol->reasons, pol->n_reasons, ev->reason))
        return "reason_not_allowed";
    if (!c->deactivated) {
        c->deactivated = true;
        c->deact_since = c->now;
        jobject o = {0};
        jo_str(&o, "reason", ev->reason);
        jo_str(&o, "actor", ev->actor);
        char **open = xrealloc(NULL, c->n_windows * sizeof *open);
        for (size_t i = 0; i < c->n_windows; i++)
            open[i] = c->windows[i].aid;
        jo_strs(&o, "windows", open, c->n_windows);
        free(open);
        log_entry(c, c->now, "deactivation", &o);
        c->manual_hold = false;
        if (c->rec) {
            free(c->paused_incident);
            c->paused_incident = xstrdup(c->rec->incident);
        }
        reconcile(c);
    }
    return NULL;
}

static const char *dispatch(camera_t *c, const event_t *ev)
{
    const policy_t *pol = &c->setup->policy;
    switch (ev->type) {
    case EV_ACTIVITY_START: return activity_start(c, ev);
    case EV_ACTIVITY_END: return activity_end(c, ev);
    case EV_SIGNAL: {
        if (!policy_lists(pol->signals, pol->n_signals, ev->source))
            return NULL; /* a source this policy does not list starts nothing */
        char *reason = xprintf("signal:%s", ev->source);
        const char *error = manual_start(c, reason);
        free(reason);
        return error;
    }
    case EV_BUTTON: return ev->start ? manual_start(c, "button") : stop(c);
    case EV_DOCK:
        if (c->state != ST_DOCKED) {
            c->manual_hold = false;
            fire(c, T_DOCK);
            alert_missed(c, CAUSE_DOCKED);
        }
        return NULL;
    case EV_UNDOCK:
        if (c->state == ST_DOCKED) {
            fire(c, T_UNDOCK);
            alert_missed(c, CAUSE_NOT_READY);
        }
        return NULL;
    case EV_DEACTIVATE: return deactivate(c, ev);
    case EV_REACTIVATE:
        if (c->deactivated) {
            end_deactivation(c, "reactivate");
            reconcile(c);
        }
        return NULL;
    }
    return "unknown_type";
}

/* --------------------------------------------------------------------- replies (R-IDEM) */

/* The duplicate table: the first reply to each recent message, per sender, for the
 * redelivery window and at most max_remembered of them, oldest dropped first (R-BOUND). */

static void reply_drop_oldest(camera_t *c)
{
    reply_t *r = &c->replies[c->replies_head++];
    free(r->sender);
    msgid_free(&r->id);
    free(r->error);
    if (c->replies_head == c->n_replies)
        c->replies_head = c->n_replies = 0;
}

static bool same_sender(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static long find_reply(camera_t *c, const char *sender, const msgid_t *id, double now)
{
    double horizon = now - c->setup->limits.duplicate_window_s;
    while (c->replies_head < c->n_replies && c->replies[c->replies_head].at < horizon)
        reply_drop_oldest(c);
    for (size_t i = c->n_replies; i-- > c->replies_head;)
        if (msgid_eq(&c->replies[i].id, id) && same_sender(c->replies[i].sender, sender))
            return (long)i;
    return -1;
}

static void remember(camera_t *c, const char *sender, const msgid_t *id, bool ok,
                     const char *error)
{
    if (c->replies_head > 0 && c->n_replies == c->cap_replies) { /* reuse the dropped slots */
        memmove(c->replies, c->replies + c->replies_head,
                (c->n_replies - c->replies_head) * sizeof *c->replies);
        c->n_replies -= c->replies_head;
        c->replies_head = 0;
    }
    if (c->n_replies == c->cap_replies) {
        c->cap_replies = c->cap_replies ? 2 * c->cap_replies : 16;
        c->replies = xrealloc(c->replies, c->cap_replies * sizeof *c->replies);
    }
    c->replies[c->n_replies++] = (reply_t){sender ? xstrdup(sender) : NULL, msgid_copy(id), ok,
                                           error ? xstrdup(error) : NULL, c->now};
    while ((long)(c->n_replies - c->replies_head) > c->setup->limits.max_remembered)
        reply_drop_oldest(c);
}

static void send_reply(camera_t *c, const reply_t *r)
{
    outbox_add(c->out, c->topics.ack, encode_ack(&r->id, r->ok, r->error), false);
}

static void catch_up(camera_t *c, double now)
{
    run_timers(c, now);
    report(c);
}

/* NACK a payload that was not handled (R-BAD, R-AUTH); nothing else changes. by: the principal
 * it named; remember: keep the NACK for redeliveries (not when its origin did not verify). */
static void refuse(camera_t *c, const msgid_t *id, const char *error, double now, const char *by,
                   bool keep)
{
    catch_up(c, now);
    jobject o = {0};
    jo_id(&o, "id", id);
    if (id->kind != ID_NONE && keep) {
        long r = find_reply(c, by, id, now);
        if (r >= 0) {
            log_origin(c, now, "duplicate", &o, by);
            send_reply(c, &c->replies[r]);
            return;
        }
        remember(c, by, id, false, error);
    }
    jo_str(&o, "error", error);
    log_origin(c, now, "refused", &o, by);
    outbox_add(c->out, c->topics.ack, encode_ack(id, false, error), false);
}

static void handle(camera_t *c, const event_t *ev, double now, const char *sender)
{
    catch_up(c, now);
    jobject o = {0};
    jo_id(&o, "id", &ev->id);
    long r = find_reply(c, sender, &ev->id, now);
    if (r >= 0) { /* QoS 1 redelivery: the same answer, no second effect */
        log_origin(c, now, "duplicate", &o, sender);
        send_reply(c, &c->replies[r]);
        return;
    }
    const char *error = dispatch(c, ev);
    if (error)
        jo_str(&o, "error", error);
    else
        jo_str(&o, "type", event_name(ev->type));
    log_origin(c, now, error ? "refused" : "accepted", &o, sender);
    remember(c, sender, &ev->id, error == NULL, error);
    send_reply(c, &c->replies[c->n_replies - 1]);
    report(c);
}

/* --------------------------------------------------------------------- the interface */

static void init(camera_t *c, double now)
{
    const params_t *p = c->p;
    c->state = c->setup->initial;
    c->now = c->since = c->buffer_since = now;
    c->has_boot_end = c->state == ST_STANDBY;
    c->boot_end = now + p->boot_s;
    c->charge = p->battery_s;
    c->charge_t = c->used_t = c->upload_t = now;
    c->low_armed = p->battery_s > p->low_battery_s;
    c->used = 0.0;
    history_push(c);
}

camera_t *camera_new(const setup_t *setup)
{
    camera_t *c = xrealloc(NULL, sizeof *c);
    memset(c, 0, sizeof *c);
    c->setup = setup;
    c->p = &setup->params;
    c->gate = gate_new(setup);
    c->audit = audit_new(setup->camera_id);
    topics_init(&c->topics, setup);
    init(c, 0.0);
    return c;
}

void camera_free(camera_t *c)
{
    topics_free(&c->topics);
    free(c->uploads.v);
    for (size_t i = 0; i < c->n_activities; i++) {
        free(c->activities[i].aid);
        free(c->activities[i].name);
    }
    free(c->activities);
    for (size_t i = 0; i < c->n_windows; i++)
        free(c->windows[i].aid);
    free(c->windows);
    sv_clear(&c->ended);
    free(c->ended.v);
    free(c->paused_incident);
    if (c->rec) {
        free(c->rec->id);
        free(c->rec->incident);
        sv_clear(&c->rec->reasons);
        free(c->rec->reasons.v);
        free(c->rec->segments.v);
        free(c->rec);
    }
    sv_clear(&c->next_reasons);
    free(c->next_reasons.v);
    while (c->replies_head < c->n_replies)
        reply_drop_oldest(c);
    free(c->replies);
    gate_free(c->gate);
    free(c->history);
    free(c->footage.v);
    free(c->paused.v);
    audit_free(c->audit);
    free(c);
}

void camera_start(camera_t *c, double now, outbox_t *out)
{
    c->out = out;
    if (now != c->since) { /* powered on later than t=0: battery, buffer and boot count from now */
        c->n_history = 0;
        init(c, now);
    }
    outbox_add(out, c->topics.availability, xstrdup("online"), true);
    jobject o = {0};
    jo_str(&o, "state", state_name(c->state));
    log_entry(c, c->now, "power_on", &o);
    report(c);
}

/* What an inbound topic addresses, as a signed body's "to" names it: the camera id, or
 * team/<team>; NULL for a topic the camera does not listen on. */
static char *target_of(const camera_t *c, const char *topic)
{
    if (strcmp(topic, c->topics.event) == 0)
        return xstrdup(c->setup->camera_id);
    for (size_t i = 0; i < c->topics.n_teams; i++)
        if (strcmp(topic, c->topics.team_events[i]) == 0)
            return xprintf("team/%s", c->setup->teams[i]);
    return NULL;
}

void camera_deliver(camera_t *c, double now, const char *topic, const unsigned char *payload,
                    size_t len, outbox_t *out)
{
    c->out = out;
    char *target = target_of(c, topic);
    if (!target) {
        msgid_t id = peek_id(payload, len);
        char *error = xprintf("wrong_topic: %s", topic);
        refuse(c, &id, error, now, NULL, true);
        free(error);
        msgid_free(&id);
        return;
    }
    admission_t adm;
    gate_admit(c->gate, payload, len, &adm);
    if (!adm.admitted) {
        refuse(c, &adm.id, adm.error, now, adm.claimed, adm.remember);
    } else if (find_reply(c, adm.sender, &adm.ev.id, now) >= 0) {
        handle(c, &adm.ev, now, adm.sender); /* a redelivery gets its first reply */
    } else {
        const char *aid = adm.ev.activity_id;
        char *error = gate_authorize(c->gate, &adm, target, now, aid && activity_find(c, aid) >= 0);
        if (error) {
            refuse(c, &adm.ev.id, error, now, adm.claimed, adm.sender != NULL);
            free(error);
        } else {
            handle(c, &adm.ev, now, adm.sender);
            gate_record(c->gate, &adm, aid && activity_find(c, aid) >= 0);
        }
    }
    admission_free(&adm);
    free(target);
}

bool camera_deadline(const camera_t *c, double *at)
{
    return next_timer(c, at) != K_NONE;
}

void camera_timer(camera_t *c, double now, outbox_t *out)
{
    c->out = out;
    run_timers(c, now);
    report(c);
}

void camera_finish(camera_t *c, double now, outbox_t *out)
{
    c->out = out;
    run_timers(c, now);
    if (c->rec)
        publish_recording(c, c->rec, now, true, true);
}

char *camera_audit(const camera_t *c, size_t first, const char **head)
{
    *head = audit_head(c->audit);
    return audit_entries_json(c->audit, first < audit_len(c->audit) ? first : audit_len(c->audit));
}
