/* The bodies of generated events: page views (the page in context.page as analytics.js sends
 * it, or in properties), with UTM-tagged URLs and campaigns, and the properties/context of
 * every track kind (QR scans, forms, e-mails, webinars, downloads, videos, UTM clicks, sales
 * feedback). The envelope around them is gen_event.c's. */
#include "gen_int.h"

/*---- Vocabulary ---------------------------------------------------------------------------*/

static const char *const gen_blog[] = {"zero-trust-for-midsize-teams",
                                       "state-of-revops-2026",
                                       "how-we-cut-etl-costs",
                                       "intent-data-101",
                                       "pipeline-hygiene-checklist",
                                       "what-is-an-mql",
                                       "abm-playbook",
                                       "streaming-vs-batch",
                                       "lead-scoring-models"};
static const char *const gen_products[] = {"analytics", "connectors", "governance", "ai-assistant",
                                           "integrations"};
static const char *const gen_docs[] = {"getting-started", "api", "sdk/python",
                                       "security",        "sso", "connectors/kafka"};
static const char *const gen_campaigns[] = {"q1-launch",    "webinar-data-mesh",   "retargeting-eu",
                                            "brand-search", "partner-summit-2026", "ebook-revops",
                                            "nurture-q1"};
static const char *const gen_referrers[] = {"https://www.google.com/", "https://www.linkedin.com/",
                                            "https://news.ycombinator.com/",
                                            "https://www.bing.com/"};
static const char *const gen_agents[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Firefox/121.0"};
static const char *const gen_conferences[] = {"SaaStr Europa 2026", "Web Summit 2026",
                                              "RevOps Summit London", "Data Council Austin"};
static const char *const gen_qr[] = {"booth-B12", "booth-A03", "session-S07-keynote",
                                     "session-S14-workshop", "flyer-2026-q1"};
static const char *const gen_forms[] = {"demo-request", "contact",    "newsletter",
                                        "whitepaper",   "newsletter", "whitepaper"};
static const char *const gen_assets[] = {"whitepaper-zero-trust.pdf", "ebook-revops-2026.pdf",
                                         "case-study-globex.pdf", "datasheet-connectors.pdf"};
static const char *const gen_videos[] = {"product-tour", "customer-story-hooli",
                                         "webinar-data-mesh-recording", "demo-ai-assistant"};
static const char *const gen_webinars[] = {"Webinar: Data Mesh in Practice",
                                           "Roundtable: RevOps 2026",
                                           "Workshop: Streaming Lead Scoring"};
static const char *const gen_reject_reasons[] = {"no budget", "bad timing", "not a fit",
                                                 "already a customer"};
static const char *const gen_dq_reasons[] = {"student", "competitor", "spam", "job seeker"};

/*---- Pages, links, campaigns, page views --------------------------------------------------*/

typedef struct {
    char path[160];
    size_t path_len;
    const char *title;
} gen_page_t;

static void gen_pick_page(lf_gen_t *g, gen_page_t *p)
{
    lf_gen_sb_t sb;
    sb.n = 0;
    uint32_t r = lf_gen_rng_below(&g->rng, 100);
    if (r < 15) {
        lf_gen_sb_ch(&sb, '/');
        p->title = "Acme Cloud - the data platform for revenue teams";
    } else if (r < 45) {
        lf_gen_sb_cat(&sb, "/blog/");
        lf_gen_sb_cat(&sb, GEN_PICK(&g->rng, gen_blog));
        p->title = "Blog | Acme Cloud";
    } else if (r < 55) {
        lf_gen_sb_cat(&sb, "/pricing");
        p->title = "Pricing | Acme Cloud";
    } else if (r < 75) {
        lf_gen_sb_cat(&sb, "/product/");
        lf_gen_sb_cat(&sb, GEN_PICK(&g->rng, gen_products));
        p->title = "Product | Acme Cloud";
    } else if (r < 80) {
        lf_gen_sb_cat(&sb, "/careers");
        p->title = "Careers | Acme Cloud";
    } else {
        lf_gen_sb_cat(&sb, "/docs/");
        lf_gen_sb_cat(&sb, GEN_PICK(&g->rng, gen_docs));
        p->title = "Docs | Acme Cloud";
    }
    memcpy(p->path, sb.b, sb.n);
    p->path_len = sb.n;
}

typedef struct {
    const char *source, *medium, *campaign;
    int click; /* 0 none, 1 gclid, 2 fbclid */
} gen_utm_t;

static void gen_pick_utm(lf_gen_t *g, gen_utm_t *u)
{
    uint32_t r = lf_gen_rng_below(&g->rng, 100);
    u->click = 0;
    if (r < 35) {
        u->source = "google";
        u->medium = "cpc";
        u->campaign = lf_gen_rng_chance(&g->rng, 0.6) ? "brand-search" : "retargeting-eu";
        if (lf_gen_rng_chance(&g->rng, 0.7)) u->click = 1;
    } else if (r < 65) {
        u->source = "linkedin";
        u->medium = lf_gen_rng_chance(&g->rng, 0.5) ? "social" : "cpc";
        u->campaign = GEN_PICK(&g->rng, gen_campaigns);
        if (lf_gen_rng_chance(&g->rng, 0.1)) u->click = 2;
    } else if (r < 85) {
        u->source = "newsletter";
        u->medium = "email";
        u->campaign = lf_gen_rng_chance(&g->rng, 0.5) ? "nurture-q1" : "ebook-revops";
    } else {
        u->source = "partner";
        u->medium = "referral";
        u->campaign = "partner-summit-2026";
        if (lf_gen_rng_chance(&g->rng, 0.2)) u->click = 2;
    }
}

/* GEN_SITE + path [+ ?utm_...] into sb. */
static void gen_url(lf_gen_t *g, lf_gen_sb_t *sb, const char *path, size_t path_len,
                    const gen_utm_t *u)
{
    sb->n = 0;
    lf_gen_sb_cat(sb, GEN_SITE);
    lf_gen_sb_catn(sb, path, path_len);
    if (!u) return;
    lf_gen_sb_cat(sb, "?utm_source=");
    lf_gen_sb_cat(sb, u->source);
    lf_gen_sb_cat(sb, "&utm_medium=");
    lf_gen_sb_cat(sb, u->medium);
    lf_gen_sb_cat(sb, "&utm_campaign=");
    lf_gen_sb_cat(sb, u->campaign);
    if (u->click) {
        lf_gen_sb_cat(sb, u->click == 1 ? "&gclid=" : "&fbclid=");
        lf_gen_sb_cat(sb, u->click == 1 ? "Cj0KCQiA" : "IwAR");
        lf_gen_sb_hex(sb, lf_gen_rng_next(&g->rng), 16);
    }
}

static void gen_campaign_map(lf_gen_enc_t *e, const gen_utm_t *u)
{
    lf_gen_enc_key(e, "campaign");
    lf_gen_enc_map_begin(e);
    lf_gen_enc_kv_cstr(e, "source", u->source);
    lf_gen_enc_kv_cstr(e, "medium", u->medium);
    lf_gen_enc_kv_cstr(e, "name", u->campaign);
    lf_gen_enc_map_end(e);
}

/* A page view: the page fields in context.page (as analytics.js sends them) or, for some
 * server-side sources, in properties. */
void lf_gen_body_page(lf_gen_t *g)
{
    lf_gen_enc_t *e = &g->enc;
    gen_page_t page;
    gen_utm_t utm;
    gen_pick_page(g, &page);
    int has_utm = lf_gen_rng_chance(&g->rng, 0.25);
    if (has_utm) gen_pick_utm(g, &utm);
    int explicit_campaign =
        has_utm ? lf_gen_rng_chance(&g->rng, 0.4) : lf_gen_rng_chance(&g->rng, 0.03);
    if (explicit_campaign && !has_utm) gen_pick_utm(g, &utm);
    const char *referrer = lf_gen_rng_below(&g->rng, 3) ? GEN_PICK(&g->rng, gen_referrers) : NULL;
    int in_props = lf_gen_rng_chance(&g->rng, 0.3);
    const char *agent = lf_gen_rng_chance(&g->rng, 0.5) ? GEN_PICK(&g->rng, gen_agents) : NULL;
    gen_url(g, &g->sb, page.path, page.path_len, has_utm ? &utm : NULL);

    if (in_props) {
        lf_gen_enc_key(e, "properties");
        lf_gen_enc_map_begin(e);
    } else {
        lf_gen_enc_key(e, "context");
        lf_gen_enc_map_begin(e);
        lf_gen_enc_key(e, "page");
        lf_gen_enc_map_begin(e);
    }
    lf_gen_enc_kv_str(e, "path", page.path, page.path_len);
    if (referrer) lf_gen_enc_kv_cstr(e, "referrer", referrer);
    lf_gen_enc_kv_cstr(e, "title", page.title);
    lf_gen_enc_kv_str(e, "url", g->sb.b, g->sb.n);
    lf_gen_enc_map_end(e);
    if (in_props && (agent || explicit_campaign)) {
        lf_gen_enc_key(e, "context");
        lf_gen_enc_map_begin(e);
    }
    if (agent) lf_gen_enc_kv_cstr(e, "userAgent", agent);
    if (explicit_campaign) gen_campaign_map(e, &utm);
    if (!in_props || agent || explicit_campaign) lf_gen_enc_map_end(e);
}

/*---- Track events, one writer per kind ---------------------------------------------------*/

/* k: { ... } opened; the caller closes it. */
static void gen_open(lf_gen_enc_t *e, const char *k)
{
    lf_gen_enc_key(e, k);
    lf_gen_enc_map_begin(e);
}

/* context.<what> = {name, version}: the app or library that sent the event. */
static void gen_context_sender(lf_gen_enc_t *e, const char *what, const char *name,
                               const char *version)
{
    gen_open(e, "context");
    gen_open(e, what);
    lf_gen_enc_kv_cstr(e, "name", name);
    lf_gen_enc_kv_cstr(e, "version", version);
    lf_gen_enc_map_end(e);
    lf_gen_enc_map_end(e);
}

static void gen_track_qr(lf_gen_t *g)
{
    lf_gen_enc_t *e = &g->enc;
    gen_open(e, "properties");
    lf_gen_enc_kv_cstr(e, "qr", GEN_PICK(&g->rng, gen_qr));
    lf_gen_enc_kv_cstr(e, "event", GEN_PICK(&g->rng, gen_conferences));
    lf_gen_enc_map_end(e);
    gen_context_sender(e, "app", "BoothScanner", "3.2.1");
}

static void gen_track_form(lf_gen_t *g)
{
    lf_gen_enc_t *e = &g->enc;
    const char *form = GEN_PICK(&g->rng, gen_forms);
    gen_open(e, "properties");
    lf_gen_enc_kv_cstr(e, "form_id", form);
    lf_gen_enc_map_end(e);
    const char *path = form[0] == 'd' ? "/pricing" : "/contact";
    gen_url(g, &g->sb, path, strlen(path), NULL);
    gen_open(e, "context");
    gen_open(e, "page");
    lf_gen_enc_kv_str(e, "url", g->sb.b, g->sb.n);
    lf_gen_enc_map_end(e);
    lf_gen_enc_map_end(e);
}

static void gen_track_email(lf_gen_t *g, lf_kind_t kind)
{
    lf_gen_enc_t *e = &g->enc;
    gen_utm_t utm;
    const char *camp = lf_gen_rng_chance(&g->rng, 0.6) ? "nurture-q1" : "webinar-data-mesh";
    lf_gen_sb_t *sb = &g->sb;
    sb->n = 0;
    lf_gen_sb_cat(sb, "em-");
    lf_gen_sb_cat(sb, camp);
    lf_gen_sb_ch(sb, '-');
    lf_gen_sb_u64(sb, 1 + lf_gen_rng_below(&g->rng, 6), 1);
    gen_open(e, "properties");
    lf_gen_enc_kv_str(e, "email_id", sb->b, sb->n);
    lf_gen_enc_kv_cstr(e, "campaign_name", camp);
    if (kind == LF_KIND_EMAIL_CLICK) {
        gen_page_t page;
        gen_pick_page(g, &page);
        utm = (gen_utm_t){"newsletter", "email", camp, 0};
        gen_url(g, sb, page.path, page.path_len, &utm);
        lf_gen_enc_kv_str(e, "link_url", sb->b, sb->n);
    }
    lf_gen_enc_map_end(e);
    gen_open(e, "context");
    utm = (gen_utm_t){"newsletter", "email", camp, 0};
    gen_campaign_map(e, &utm);
    lf_gen_enc_map_end(e);
}

/* A lead registers for and attends the same webinar (hashed from the lead). */
static void gen_track_webinar(lf_gen_t *g, const lf_gen_ev_t *ev)
{
    lf_gen_enc_t *e = &g->enc;
    uint32_t w = (uint32_t)(lf_gen_mix(g->o.seed, ev->lead, 0xE7) % ARRAY_LEN(gen_webinars));
    gen_open(e, "properties");
    lf_gen_enc_kv_cstr(e, "event_name", gen_webinars[w]);
    lf_gen_enc_kv_int(e, "event_id", 3100 + w);
    if (ev->kind == LF_KIND_EVENT_ATTEND)
        lf_gen_enc_kv_int(e, "minutes", 5 + lf_gen_rng_below(&g->rng, 55));
    lf_gen_enc_map_end(e);
}

static void gen_track_asset(lf_gen_t *g)
{
    lf_gen_enc_t *e = &g->enc;
    gen_open(e, "properties");
    lf_gen_enc_kv_cstr(e, "asset", GEN_PICK(&g->rng, gen_assets));
    lf_gen_enc_kv_cstr(e, "asset_type", lf_gen_rng_chance(&g->rng, 0.5) ? "whitepaper" : "ebook");
    lf_gen_enc_map_end(e);
}

static void gen_track_video(lf_gen_t *g)
{
    lf_gen_enc_t *e = &g->enc;
    gen_open(e, "properties");
    lf_gen_enc_kv_cstr(e, "video_id", GEN_PICK(&g->rng, gen_videos));
    lf_gen_enc_kv_int(e, "percent", 25 * (1 + lf_gen_rng_below(&g->rng, 4)));
    lf_gen_enc_key(e, "muted");
    lf_gen_enc_bool(e, lf_gen_rng_chance(&g->rng, 0.3));
    lf_gen_enc_map_end(e);
}

static void gen_track_utm_click(lf_gen_t *g)
{
    lf_gen_enc_t *e = &g->enc;
    gen_page_t page;
    gen_utm_t utm;
    gen_pick_page(g, &page);
    gen_pick_utm(g, &utm);
    gen_url(g, &g->sb, page.path, page.path_len, &utm);
    gen_open(e, "properties");
    lf_gen_enc_kv_str(e, "url", g->sb.b, g->sb.n);
    lf_gen_enc_map_end(e);
}

/* Sales feedback from the CRM: an owner per lead (hashed), a reason or an amount. */
static void gen_track_sales(lf_gen_t *g, const lf_gen_ev_t *ev)
{
    lf_gen_enc_t *e = &g->enc;
    lf_gen_sb_t *sb = &g->sb;
    sb->n = 0;
    lf_gen_sb_cat(sb, "sdr-");
    lf_gen_sb_u64(sb, lf_gen_mix(g->o.seed, ev->lead, 0x5D) % 24 + 1, 2);
    gen_open(e, "properties");
    lf_gen_enc_kv_str(e, "owner", sb->b, sb->n);
    if (ev->kind == LF_KIND_SALES_REJECT)
        lf_gen_enc_kv_cstr(e, "reason", GEN_PICK(&g->rng, gen_reject_reasons));
    else if (ev->kind == LF_KIND_DISQUALIFY)
        lf_gen_enc_kv_cstr(e, "reason", GEN_PICK(&g->rng, gen_dq_reasons));
    else if (ev->kind == LF_KIND_OPPORTUNITY_CREATED || ev->kind == LF_KIND_DEAL_WON ||
             ev->kind == LF_KIND_DEAL_LOST) {
        lf_gen_enc_kv_int(e, "amount",
                          1000 * (12 + (int64_t)(lf_gen_mix(g->o.seed, ev->lead, 9) % 240)));
        lf_gen_enc_kv_cstr(e, "currency", "EUR");
    }
    lf_gen_enc_map_end(e);
    gen_context_sender(e, "library", "crm-sync", "1.4.0");
}

void lf_gen_body_track(lf_gen_t *g, const lf_gen_ev_t *ev)
{
    switch (ev->kind) {
    case LF_KIND_QR_SCAN:
        gen_track_qr(g);
        break;
    case LF_KIND_FORM_SUBMIT:
        gen_track_form(g);
        break;
    case LF_KIND_EMAIL_OPEN:
    case LF_KIND_EMAIL_CLICK:
        gen_track_email(g, ev->kind);
        break;
    case LF_KIND_EVENT_REGISTER:
    case LF_KIND_EVENT_ATTEND:
        gen_track_webinar(g, ev);
        break;
    case LF_KIND_ASSET_DOWNLOAD:
        gen_track_asset(g);
        break;
    case LF_KIND_VIDEO_VIEW:
        gen_track_video(g);
        break;
    case LF_KIND_UTM_CLICK:
        gen_track_utm_click(g);
        break;
    case LF_KIND_SALES_ACCEPT:
    case LF_KIND_SALES_QUALIFY:
    case LF_KIND_OPPORTUNITY_CREATED:
    case LF_KIND_DEAL_WON:
    case LF_KIND_DEAL_LOST:
    case LF_KIND_SALES_REJECT:
    case LF_KIND_DISQUALIFY:
        gen_track_sales(g, ev);
        break;
    default:
        break;
    }
}
