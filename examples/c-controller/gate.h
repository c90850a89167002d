/*
 * gate.h -- who may command the camera, and the proof that they did (bwcsim SPEC 14:
 * R-AUTH, R-FRESH, R-BOUND), in front of camera_fixed.c.
 */
#ifndef BWC_GATE_H
#define BWC_GATE_H

#include "bwc.h"
#include "codec.h"

typedef struct gate gate_t;

/* What admit() made of a payload: an event whose origin is established, or a refusal. */
typedef struct {
    bool admitted;
    event_t ev;           /* admitted: the event */
    const char *sender;   /* admitted: the verified principal, NULL in auth none */
    char *claimed;        /* the principal the payload named, if any */
    msgid_t id;           /* refused: the id to answer with (ID_NONE if none could be read) */
    char *error;          /* refused: the NACK */
    bool remember;        /* refused: keep the NACK for redeliveries (origin verified) */
} admission_t;

gate_t *gate_new(const setup_t *setup);
void gate_free(gate_t *gate);
/* Bounds, the envelope and its signature, then the event it carries. */
void gate_admit(gate_t *gate, const unsigned char *payload, size_t len, admission_t *out);
/* The NACK for a command its sender may not give now (malloc'd), or NULL. target is what the
 * topic addressed (the camera id or team/<team>); running: the event's activity is open. */
char *gate_authorize(const gate_t *gate, const admission_t *adm, const char *target, double now,
                     bool running);
/* Remember what an authorized command spent: its sequence number, who started what. */
void gate_record(gate_t *gate, const admission_t *adm, bool running);
void admission_free(admission_t *adm);

#endif
