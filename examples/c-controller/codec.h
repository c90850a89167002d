/*
 * codec.h -- the camera's MQTT payloads (bwcsim SPEC section 5): inbound events decoded with
 * the refusal words of the spec (R-BAD), outbound acks, state, alerts and recording metadata.
 */
#ifndef BWC_CODEC_H
#define BWC_CODEC_H

#include "bwc.h"

#include <cjson/cJSON.h>

#define MAX_PAYLOAD (64 * 1024)
#define MAX_DEPTH 16  /* JSON nesting a payload may have (R-BOUND) */
#define FIELD_MAX 128 /* characters in an id or a field the camera keeps (R-BOUND) */

/* A message id: a JSON string or a JSON integer of 64 bits ("7" and 7 are different ids; 7.0
 * is no id at all). A string id keeps its length: "a\u0000b" is three bytes, not "a". */
typedef enum { ID_NONE, ID_STR, ID_INT } id_kind;
typedef struct {
    id_kind kind;
    char *str; /* ID_STR: the exact bytes, NUL-terminated for convenience */
    size_t len;
    long long num;
} msgid_t;

msgid_t msgid_copy(const msgid_t *id);
void msgid_free(msgid_t *id);
bool msgid_eq(const msgid_t *a, const msgid_t *b);

typedef enum {
    EV_ACTIVITY_START,
    EV_ACTIVITY_END,
    EV_DOCK,
    EV_UNDOCK,
    EV_BUTTON,
    EV_SIGNAL,
    EV_DEACTIVATE,
    EV_REACTIVATE
} event_type;

typedef struct {
    event_type type;
    msgid_t id;
    bool has_ts;
    double ts; /* when the activity really began (only a trigger's lateness uses it) */
    bool has_seq;
    long long seq; /* a signed command's sequence number (SPEC 14) */
    char *to;      /* the camera id or team/<team> a signed command was signed for */
    char *activity, *activity_id, *source, *reason, *actor;
    bool start; /* button: start (true) or stop */
} event_t;

/* ------------------------------------------------------------------ JSON as the reference reads it
 *
 * cJSON reads every number as a double and every string up to its first NUL. The reference
 * reads 7 as an integer and 7.0 as a float, 9007199254740993 exactly, and "a\u0000b" as three
 * characters. A json_doc is cJSON's tree plus the text of each string and number token, in
 * document order (the order of a pre-order walk of the tree), so a member can be read the
 * reference's way where that matters: message ids, sequence numbers, the protocol's seq. */
typedef struct {
    cJSON *root;
    const char *text;
    size_t *tok_at, *tok_len; /* every string token (quotes included) and number token */
    size_t n_tok, cap_tok;
    bool out_of_range; /* a number with a fraction or exponent beyond the range of a double */
} json_doc;

/* Parse text that must be one JSON value (UTF-8, no raw control characters, numbers as RFC
 * 8259 writes them). false: *error is the reason (malloc'd) and doc holds nothing. */
bool json_parse(json_doc *doc, const unsigned char *text, size_t len, char **error);
void json_doc_free(json_doc *doc);
/* The last member named key (a repeated key counts with its last value), or NULL. */
const cJSON *json_member(const cJSON *obj, const char *key);

typedef enum { NUM_INT, NUM_BIG_INT, NUM_FLOAT } num_kind;
/* How a number item is written: an integer of 64 bits (its exact *value), an integer beyond
 * 64 bits, or a number with a fraction or an exponent (7.0, 1e2: never an integer). */
num_kind json_number_kind(const json_doc *doc, const cJSON *item, long long *value);
/* An integer item's value as the reference writes it back, however long (-0 is 0); malloc'd. */
char *json_integer_text(const json_doc *doc, const cJSON *item);
/* A string item's exact bytes (malloc'd, NUL-terminated; *len excludes the terminator). */
char *json_string_bytes(const json_doc *doc, const cJSON *item, size_t *len);

/* ------------------------------------------------------------------ canonical JSON text
 * The way the reference writes JSON (controller/audit.py, "The canonical form"): the audit
 * chain hashes these bytes, and the camera's payloads use them too. */
typedef struct {
    char *s;
    size_t n, cap;
} strbuf;

void sb_put(strbuf *sb, const char *s, size_t n);
void sb_puts(strbuf *sb, const char *s);
/* s[0..len) as a JSON string: only '"', '\\' and control characters escaped. */
void sb_json_string(strbuf *sb, const char *s, size_t len);
/* The shortest text that reads back as value, laid out as the reference lays out floats:
 * 12.5, 3600.0, 0.00001, 1e16, 1.5e-7 (a finite value; out holds at least 32 bytes). */
void format_double(double value, char *out);

/* Decode one inbound payload. true: *ev is filled (event_free it). false: *error is the NACK
 * text (free it) and *id the message id when one could be read (ID_NONE otherwise). */
bool decode_event(const unsigned char *payload, size_t len, event_t *ev, msgid_t *id, char **error);
void event_free(event_t *ev);
const char *event_name(event_type t);
/* The id of a payload that is refused before decoding (wrong topic). */
msgid_t peek_id(const unsigned char *payload, size_t len);
/* The event type a payload names, when it is a JSON object naming a known one (else NULL). */
const char *peek_type(const unsigned char *payload, size_t len);
/* Whether a payload (JSON or garbage) nests arrays and objects more than limit deep. */
bool depth_exceeds(const unsigned char *payload, size_t len, int limit);

/* A signed command (SPEC 14): {"by": principal, "sig": base64url Ed25519, "body": event JSON}. */
typedef struct {
    char *by, *sig, *body;
} envelope_t;

bool decode_envelope(const unsigned char *payload, size_t len, envelope_t *env);
void envelope_free(envelope_t *env);

/* base64 (RFC 4648, padded; NULL on malformed input) and base64url as trust files and
 * signatures write it (padding optional). Results are malloc'd; decoded data is NUL-terminated. */
char *b64_encode(const unsigned char *s, size_t n);
unsigned char *b64_decode(const char *s, size_t *n);
unsigned char *b64url_decode(const char *s, size_t *n);

/* Outbound payloads (malloc'd JSON text). */
char *encode_ack(const msgid_t *id, bool ok, const char *error);
char *encode_state(cam_state state, double since, char *const *active, size_t n_active,
                   double battery_s, double storage_s, const char *auth);
char *encode_alert(const char *kind, double at, const char *cause, const char *activity_id,
                   const double *span /* [2] or NULL */);
char *encode_recording(const char *camera, const char *recording, const char *incident,
                       double start, double end, double buffer_s, char *const *reasons,
                       size_t n_reasons, const double *segments /* pairs */, size_t n_segments,
                       bool final, bool open);

/* A JSON number that reads back as exactly the same double, written as format_double writes
 * it (cJSON's own printer rounds to 15 digits when that is "close enough"; a deadline must
 * not move by one ulp). */
cJSON *json_number(double value);
/* An id as the reference writes it in an ack: a JSON string, an integer or null. */
cJSON *json_id(const msgid_t *id);

/* The camera's topics under its prefix. */
typedef struct {
    char *event, *state, *availability, *ack, *alert, *recording;
    char **team_events;
    size_t n_teams;
} topics_t;

void topics_init(topics_t *t, const setup_t *setup);
void topics_free(topics_t *t);
bool topics_is_inbound(const topics_t *t, const char *topic);

#endif
