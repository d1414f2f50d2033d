/* Identity resolution for one attempt: which lead each event belongs to. An event names a
 * lead by userId, or only by anonymousId (a visitor); an identify or alias event links an
 * anonymous id to the user, and Redis keeps that link (an alias). The leads of a batch are
 * found in two rounds (the ids the events name, then the leads their aliases point to), each
 * given a slot; a visitor that identifies during the batch is merged into the lead's slot.
 * An anonymous id that is a known lead's userId (an alias of an old userId) is no visitor:
 * it is neither linked nor merged, so that lead keeps its record and its events. */
#include <string.h>

#include "leadflow/alloc.h"
#include "pipeline_int.h"

static void lf_idmap_init(lf_idmap_t *m, size_t n, lf_arena_t *a)
{
    m->cap = 16;
    while (m->cap < n * 2)
        m->cap *= 2;
    m->keys = lf_arena_alloc(a, m->cap * sizeof(*m->keys));
    m->vals = lf_arena_alloc(a, m->cap * sizeof(*m->vals));
    memset(m->keys, 0, m->cap * sizeof(*m->keys));
}

static int *lf_idmap_slot(lf_idmap_t *m, const char *key, int insert)
{
    size_t i = lf_hash64(key, strlen(key)) & (m->cap - 1);
    while (m->keys[i]) {
        if (strcmp(m->keys[i], key) == 0) return &m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    if (!insert) return NULL;
    m->keys[i] = key;
    m->vals[i] = -1;
    return &m->vals[i];
}

static const char *lf_cstr(lf_arena_t *a, lf_str_t s)
{
    return lf_arena_strndup(a, s.ptr ? s.ptr : "", s.len);
}

/* Identify and alias link an anonymous id (alias: previousId) to the user. */
static lf_str_t lf_link_id(const lf_event_t *ev)
{
    if (ev->kind == LF_KIND_ALIAS) return ev->previous_id;
    return ev->anonymous_id;
}

/* A new slot for `id` (may move at->slots). */
static int lf_slot_new(lf_attempt_t *at, const char *id)
{
    if (at->nslots == at->capslots) {
        at->capslots = at->capslots ? at->capslots * 2 : 256;
        at->slots = lf_realloc(at->slots, at->capslots * sizeof(*at->slots));
    }
    int i = (int)at->nslots++;
    lf_slot_t *s = &at->slots[i];
    memset(s, 0, sizeof(*s));
    s->id = id;
    s->merged_into = -1;
    s->probe = -1;
    return i;
}

/* The slot of lead `id`, new if the batch had not named it yet. */
static int lf_slot_of(lf_attempt_t *at, const char *id)
{
    int *v = lf_idmap_slot(&at->leads_map, id, 1);
    if (*v < 0) *v = lf_slot_new(at, id); /* v is in the arena: slots moving leaves it */
    return *v;
}

/* Round 1: the leads and the anonymous ids the pending events name. */
static void lf_identity_named(lf_attempt_t *at)
{
    lf_pipe_t *p = at->p;
    size_t cap = p->nitems * 3 + 8;
    lf_idmap_init(&at->leads_map, cap, at->a);
    lf_idmap_init(&at->anon_map, cap, at->a);
    at->anons = lf_arena_alloc(at->a, cap * sizeof(*at->anons));
    for (size_t i = 0; i < p->nitems; i++) {
        const lf_item_t *it = &p->items[i];
        if (it->state != LF_ITEM_PENDING) continue;
        if (it->ev.user_id.len) {
            int li = lf_slot_of(at, lf_cstr(at->a, it->ev.user_id)); /* may move at->slots */
            at->slots[li].by_user = 1;
        }
        lf_str_t link = it->ev.user_id.len ? lf_link_id(&it->ev) : it->ev.anonymous_id;
        if (link.len) {
            const char *anon = lf_cstr(at->a, link);
            int *v = lf_idmap_slot(&at->anon_map, anon, 1);
            if (*v < 0) {
                *v = (int)at->nanons;
                at->anons[at->nanons++] = anon;
            }
            lf_slot_of(at, anon);
        }
    }
}

/* Whether identify/alias event ev would link an anonymous id: returns it, else an empty one. */
static lf_str_t lf_links(const lf_event_t *ev)
{
    lf_str_t none = {0};
    if (!ev->user_id.len || (ev->kind != LF_KIND_IDENTIFY && ev->kind != LF_KIND_ALIAS))
        return none;
    lf_str_t link = lf_link_id(ev);
    if (!link.len || (link.len == ev->user_id.len && !memcmp(link.ptr, ev->user_id.ptr, link.len)))
        return none;
    return link;
}

/* An anonymous id an identify/alias would link, with no alias yet and not named by a userId in
 * the batch, is read as a visitor; it may still be a known lead's userId (Segment's alias of an
 * old userId): a probe slot reads that lead's record too, in the same round trip. It is in no
 * map and takes no event, so it is never written. */
static void lf_identity_probes(lf_attempt_t *at)
{
    lf_pipe_t *p = at->p;
    for (size_t i = 0; i < p->nitems; i++) {
        const lf_item_t *it = &p->items[i];
        if (it->state != LF_ITEM_PENDING) continue;
        lf_str_t link = lf_links(&it->ev);
        if (!link.len) continue;
        const char *anon = lf_cstr(at->a, link);
        if (at->alias[*lf_idmap_slot(&at->anon_map, anon, 0)]) continue;
        int vi = *lf_idmap_slot(&at->leads_map, anon, 0);
        if (at->slots[vi].by_user || at->slots[vi].probe >= 0) continue;
        int pi = lf_slot_new(at, at->slots[vi].id); /* may move at->slots */
        at->slots[pi].by_user = 1;
        at->slots[vi].probe = pi;
    }
}

/* Whether slot v, the anonymous side of a link, is a known lead: named by a userId in the batch
 * (or an alias's lead), read as one (a cached record, or a hash of the layout before where a
 * visitor's was looked for), or found by its probe. */
static int lf_slot_is_known(const lf_attempt_t *at, const lf_slot_t *v)
{
    if (v->by_user) return 1;
    if (v->lead_ptr->exists && !v->lead_ptr->anonymous) return 1;
    if (v->probe < 0) return 0;
    const lf_lead_t *l = at->slots[v->probe].lead_ptr;
    return l->exists && !l->anonymous;
}

/* Every lead the batch touches gets a slot: round 1, the aliases of its anonymous ids read
 * from the store, round 2 the leads those point to; then the probes (lf_identity_probes). */
int lf_identity_collect(lf_attempt_t *at, lf_err_t *err)
{
    lf_identity_named(at);
    at->alias = lf_arena_alloc(at->a, (at->nanons + 1) * sizeof(*at->alias));
    at->t_start = lf_now_ms();
    lf_store_t *st = at->p->store;
    if (st->ops->load_aliases(st, at->anons, at->nanons, at->alias, at->a, err)) return LF_ERR;
    at->t_aliases = lf_now_ms();
    for (size_t i = 0; i < at->nanons; i++)
        if (at->alias[i]) {
            int li = lf_slot_of(at, at->alias[i]); /* may move at->slots */
            at->slots[li].by_user = 1;
        }
    lf_identity_probes(at);
    return LF_OK;
}

/* The slot an event applies to: its user's, or its visitor's (or the lead that visitor is an
 * alias of); a visitor merged into a lead this batch leads to that lead's slot. */
int lf_identity_slot(lf_attempt_t *at, const lf_event_t *ev)
{
    int li;
    if (ev->user_id.len) {
        li = *lf_idmap_slot(&at->leads_map, lf_cstr(at->a, ev->user_id), 0);
    } else {
        const char *anon = lf_cstr(at->a, ev->anonymous_id);
        const char *to = at->alias[*lf_idmap_slot(&at->anon_map, anon, 0)];
        li = *lf_idmap_slot(&at->leads_map, to ? to : anon, 0);
    }
    while (at->slots[li].merged_into >= 0)
        li = at->slots[li].merged_into;
    return li;
}

/* Record visitor v (anonymous id `anon`) as merged into s: the write removes it. Grows by
 * copying: merges per lead and batch are few. */
static void lf_slot_add_merged(lf_arena_t *a, lf_slot_t *s, const char *anon, const lf_slot_t *v,
                               int absorbed)
{
    size_t k = s->nmerged;
    const char **nm = lf_arena_alloc(a, sizeof(*nm) * (k + 1));
    lf_stage_t *ns = lf_arena_alloc(a, sizeof(*ns) * (k + 1));
    uint64_t *nv = lf_arena_alloc(a, sizeof(*nv) * (k + 1));
    int *nl = lf_arena_alloc(a, sizeof(*nl) * (k + 1));
    int64_t *ne = lf_arena_alloc(a, sizeof(*ne) * (k + 1));
    if (k) {
        memcpy(nm, s->merged, sizeof(*nm) * k);
        memcpy(ns, s->merged_stages, sizeof(*ns) * k);
        memcpy(nv, s->merged_versions, sizeof(*nv) * k);
        memcpy(nl, s->merged_layouts, sizeof(*nl) * k);
        memcpy(ne, s->merged_expires, sizeof(*ne) * k);
    }
    s->merged = nm;
    s->merged_stages = ns;
    s->merged_versions = nv;
    s->merged_layouts = nl;
    s->merged_expires = ne;
    nv[k] = v->loaded_version;
    /* Its funnel bucket, if this version counted it (a record of the layout before was not). */
    nl[k] = v->loaded_exists ? v->lead_ptr->layout : 0;
    ne[k] = v->loaded_exists && !v->lead_ptr->layout && !absorbed ? v->lead_ptr->expires_s : 0;
    s->merged[s->nmerged] = anon;
    s->merged_stages[s->nmerged] = v->loaded_exists ? v->loaded_stage : LF_STAGE_VISITOR;
    s->nmerged++;
}

/* identify / alias: link the visitor to the lead in slot li, once. A visitor not yet an alias
 * of any lead is merged into it (its state, if it has any), and its later events in the
 * batch go to the lead. An id that is a known lead's userId is not a visitor: no link, no
 * merge (two known leads are never merged); the event only counts for the lead in li. */
void lf_identity_link(lf_attempt_t *at, int li, const lf_event_t *ev)
{
    lf_slot_t *s = &at->slots[li];
    lf_str_t link = lf_links(ev);
    if (!link.len || lf_str_eq(link, s->lead_ptr->id)) return;
    const char *anon = lf_cstr(at->a, link);
    int ai = *lf_idmap_slot(&at->anon_map, anon, 0);
    if (at->alias[ai]) return;
    lf_slot_t *v = &at->slots[*lf_idmap_slot(&at->leads_map, anon, 0)];
    if (lf_slot_is_known(at, v)) return;
    if (v->merged_into < 0 && v != s) {
        const lf_config_t *cfg = at->p->cfg;
        /* On a Redis Cluster the lead may hold this very visitor already (its merge was written,
         * the visitor's own keys, in another slot, not cleared yet): clear them, add nothing. */
        int absorbed = lf_stored_absorbed(&s->stored, anon, v->loaded_version);
        if (v->lead_ptr->exists && v->lead_ptr->anonymous && !absorbed)
            lf_lead_merge_visitor(s->lead_ptr, v->lead_ptr, &cfg->model, cfg->dedup_window);
        v->merged_into = li;
        lf_slot_add_merged(at->a, s, anon, v, absorbed);
    }
    at->alias[ai] = (char *)s->lead_ptr->id;
}

/* A redelivered identify / alias whose lead already absorbed the visitor it links (a Redis
 * Cluster write stopped between the lead's unit and the visitor's: the visitor is still there,
 * unlinked, and the lead's absorbed record names its version): link it again, merging nothing,
 * so the write finishes clearing it. Returns 1 if it did (the lead must be written). */
int lf_identity_finish_absorbed(lf_attempt_t *at, int li, const lf_event_t *ev)
{
    lf_slot_t *s = &at->slots[li];
    lf_str_t link = lf_links(ev);
    if (!link.len || lf_str_eq(link, s->lead_ptr->id) || s->stored.nabsorbed == 0) return 0;
    const char *anon = lf_cstr(at->a, link);
    int *ai = lf_idmap_slot(&at->anon_map, anon, 0);
    int *vi = lf_idmap_slot(&at->leads_map, anon, 0);
    if (!ai || !vi || at->alias[*ai]) return 0;
    lf_slot_t *v = &at->slots[*vi];
    if (v == s || v->merged_into >= 0 || lf_slot_is_known(at, v)) return 0;
    if (!lf_stored_absorbed(&s->stored, anon, v->loaded_version)) return 0;
    lf_identity_link(at, li, ev);
    return v->merged_into == li;
}
