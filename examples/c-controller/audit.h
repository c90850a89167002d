/*
 * audit.h -- the camera's append-only, hash-chained audit log (bwcsim SPEC R-AUDIT), kept the
 * way the reference keeps it (controller/audit.py) so that the bench verifies it as it verifies
 * the reference's: the same entries, the same canonical bytes, the same SHA-256 chain.
 */
#ifndef BWC_AUDIT_H
#define BWC_AUDIT_H

#include "codec.h"

typedef struct audit_log audit_log;

audit_log *audit_new(const char *camera_id);
void audit_free(audit_log *log);
/* Append one entry: its kind and its data, a JSON object built with the jobject calls below. */
void audit_append(audit_log *log, double at, const char *kind, char *data /* taken over */);
size_t audit_len(const audit_log *log);
/* The hash of the last entry (the genesis value while there is none): 64 hex digits. */
const char *audit_head(const audit_log *log);
/* Entries from index first on, as the node protocol carries them: a JSON array of
 * [seq, at, kind, data, prev, hash] (malloc'd text). */
char *audit_entries_json(const audit_log *log, size_t first);

/* An entry's data: fields added in any order, written with sorted keys (canonical form). */
typedef struct {
    struct {
        const char *key; /* a literal */
        char *value;     /* canonical JSON text */
    } f[8];
    size_t n;
} jobject;

void jo_str(jobject *o, const char *key, const char *s); /* NULL: null */
void jo_id(jobject *o, const char *key, const msgid_t *id); /* ID_NONE: null */
void jo_num(jobject *o, const char *key, double v);
void jo_int(jobject *o, const char *key, long long v);
void jo_bool(jobject *o, const char *key, bool v);
void jo_strs(jobject *o, const char *key, char *const *v, size_t n);
/* The object's canonical text (malloc'd); the fields are freed. */
char *jo_finish(jobject *o);

#endif
