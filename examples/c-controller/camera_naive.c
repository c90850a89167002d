/*
 * camera_naive.c -- the recording-control core as it is usually written first.
 *
 * "Start recording when a required activity starts, stop when it ends, prepend the buffer."
 * It decodes every message properly (codec.c), acks what it accepts and NACKs what it does
 * not understand, boots after an undock, prepends the pre-event buffer with the right
 * arithmetic and publishes its recordings. It reads well and passes the obvious scenario (one
 * warrant, from start to end). What it does not do is exactly what the bench is for -- run
 *
 *     bwcsim fuzz --controller exec:examples/c-controller/bwc-naive --seed 1 --save failures/
 *
 * and it finds, shrinks and saves, one by one:
 *
 *   1. overlapping activities: the first activity_end stops the recording although another
 *      required activity is still running (there is no reference count);
 *   2. a manual stop (or any deactivate) during a required activity is obeyed;
 *   3. a dock mid-warrant says nothing (no missed_required_recording), and after the undock
 *      and boot the camera does not resume recording for the activity still running;
 *   4. a trigger that arrives late is not announced (no late_trigger alert) and a trigger
 *      that arrives while docked or booting is not announced either;
 *   5. no battery, storage or segment model at all.
 *
 * camera_fixed.c is the same program with these fixed.
 */
#define _POSIX_C_SOURCE 200809L

#include "bwc.h"
#include "codec.h"

#include <stdlib.h>
#include <string.h>

const char *const camera_impl_name = "bwc-naive (C99, cJSON)";

struct camera {
    const setup_t *setup;
    topics_t topics;
    outbox_t *out;
    cam_state state;
    double since, buffer_since, boot_end;
    /* the recording in progress */
    bool recording;
    char *rec_id;
    double rec_start, rec_buffer;
    strvec reasons;
    long count;
    /* the activity we are recording for (one at a time: see bug 1) */
    char *activity_id;
};

static void report(camera_t *c)
{
    char *active[1] = {c->activity_id};
    outbox_add(c->out, c->topics.state,
               encode_state(c->state, c->since, active, c->activity_id ? 1 : 0,
                            c->setup->params.battery_s, c->setup->params.storage_s, "none"),
               true);
}

static void set_state(camera_t *c, cam_state state, double now)
{
    c->state = state;
    c->since = now;
    if (state == ST_PRE_BUFFER)
        c->buffer_since = now;
    if (state == ST_STANDBY)
        c->boot_end = now + c->setup->params.boot_s;
    report(c);
}

static void publish(camera_t *c, double end, bool open)
{
    double segment[2] = {c->rec_start, end};
    char *incident = xprintf("%s-%ld", c->setup->camera_id, c->count);
    outbox_add(c->out, c->topics.recording,
               encode_recording(c->setup->camera_id, c->rec_id, incident, c->rec_start, end,
                                c->rec_buffer, c->reasons.v, c->reasons.n, segment, 1, true,
                                open),
               false);
    free(incident);
}

static void start_recording(camera_t *c, const char *reason, double now)
{
    if (c->recording) {
        if (sv_find(&c->reasons, reason) < 0)
            sv_push(&c->reasons, reason);
        return;
    }
    if (c->state != ST_PRE_BUFFER)
        return;
    /* prepend the buffer: as much as has been buffered, at most prebuffer_s */
    double buffered = now - c->buffer_since;
    c->rec_buffer = buffered < c->setup->params.prebuffer_s ? buffered : c->setup->params.prebuffer_s;
    c->rec_start = now - c->rec_buffer;
    c->recording = true;
    c->count++;
    free(c->rec_id);
    c->rec_id = xprintf("%s-r%ld", c->setup->camera_id, c->count);
    sv_clear(&c->reasons);
    sv_push(&c->reasons, reason);
    set_state(c, ST_RECORDING, now);
}

static void stop_recording(camera_t *c, double now)
{
    if (!c->recording)
        return;
    publish(c, now, false);
    c->recording = false;
    set_state(c, ST_PRE_BUFFER, now);
}

static const char *handle(camera_t *c, const event_t *ev, double now)
{
    switch (ev->type) {
    case EV_ACTIVITY_START: {
        const activity_rule *rule = policy_rule(&c->setup->policy, ev->activity);
        if (!rule)
            return "unknown_activity";
        if (rule->kind == KIND_REQUIRED) {
            free(c->activity_id);
            c->activity_id = xstrdup(ev->activity_id);
            start_recording(c, ev->activity_id, now);
        }
        return NULL;
    }
    case EV_ACTIVITY_END:
        free(c->activity_id);
        c->activity_id = NULL;
        stop_recording(c, now); /* bug 1: another activity may still be running */
        return NULL;
    case EV_BUTTON:
        if (ev->start)
            start_recording(c, "button", now);
        else
            stop_recording(c, now); /* bug 2: obeyed during a required activity */
        return NULL;
    case EV_SIGNAL:
        if (policy_lists(c->setup->policy.signals, c->setup->policy.n_signals, ev->source)) {
            char *reason = xprintf("signal:%s", ev->source);
            start_recording(c, reason, now);
            free(reason);
        }
        return NULL;
    case EV_DEACTIVATE:
        if (!policy_lists(c->setup->policy.reasons, c->setup->policy.n_reasons, ev->reason))
            return "reason_not_allowed";
        stop_recording(c, now);
        return NULL;
    case EV_REACTIVATE:
        if (c->activity_id)
            start_recording(c, c->activity_id, now);
        return NULL;
    case EV_DOCK:
        if (c->state != ST_DOCKED) {
            stop_recording(c, now);
            set_state(c, ST_DOCKED, now); /* bug 3: no alert for the activity in progress */
        }
        return NULL;
    case EV_UNDOCK:
        if (c->state == ST_DOCKED)
            set_state(c, ST_STANDBY, now);
        return NULL;
    }
    return "unknown_type";
}

camera_t *camera_new(const setup_t *setup)
{
    camera_t *c = calloc(1, sizeof *c);
    c->setup = setup;
    topics_init(&c->topics, setup);
    return c;
}

void camera_free(camera_t *c)
{
    topics_free(&c->topics);
    free(c->rec_id);
    free(c->activity_id);
    sv_clear(&c->reasons);
    free(c->reasons.v);
    free(c);
}

void camera_start(camera_t *c, double now, outbox_t *out)
{
    c->out = out;
    outbox_add(out, c->topics.availability, xstrdup("online"), true);
    set_state(c, c->setup->initial, now);
}

void camera_deliver(camera_t *c, double now, const char *topic, const unsigned char *payload,
                    size_t len, outbox_t *out)
{
    c->out = out;
    camera_timer(c, now, out);
    event_t ev;
    msgid_t id;
    char *error = NULL;
    if (!topics_is_inbound(&c->topics, topic)) {
        msgid_t peeked = peek_id(payload, len);
        outbox_add(out, c->topics.ack, encode_ack(&peeked, false, "wrong_topic"), false);
        msgid_free(&peeked);
        return;
    }
    if (!decode_event(payload, len, &ev, &id, &error)) {
        outbox_add(out, c->topics.ack, encode_ack(&id, false, error), false);
        free(error);
        msgid_free(&id);
        return;
    }
    const char *refused = handle(c, &ev, now);
    outbox_add(out, c->topics.ack, encode_ack(&ev.id, refused == NULL, refused), false);
    msgid_free(&id);
    event_free(&ev);
}

/* A first draft keeps no audit log: the bench says so and skips what needs one. */
const bool camera_keeps_audit = false;

char *camera_audit(const camera_t *c, size_t first, const char **head)
{
    (void)c;
    (void)first;
    *head = NULL;
    return NULL;
}

bool camera_deadline(const camera_t *c, double *at)
{
    if (c->state != ST_STANDBY)
        return false;
    *at = c->boot_end;
    return true;
}

void camera_timer(camera_t *c, double now, outbox_t *out)
{
    c->out = out;
    if (c->state == ST_STANDBY && now >= c->boot_end)
        set_state(c, ST_PRE_BUFFER, c->boot_end); /* bug 3: an open activity is not resumed */
}

void camera_finish(camera_t *c, double now, outbox_t *out)
{
    c->out = out;
    camera_timer(c, now, out);
    if (c->recording)
        publish(c, now, true);
}
