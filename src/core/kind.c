/* Kind names: the built-in kinds (docs/contract.md "Events in") and the Segment event names that
 * map onto them. One table: row k holds the canonical name of kind k and its accepted aliases. */
#include <stddef.h>

#include "leadflow/event.h"

#define LF_KIND_MAX_ALIASES 4

static const struct {
    const char *name;
    const char *alias[LF_KIND_MAX_ALIASES];
} kinds[LF_KIND__COUNT] = {
    [LF_KIND_OTHER] = {"other", {NULL}},
    [LF_KIND_PAGE_VIEW] = {"page_view", {"Page Viewed", "Page View"}},
    [LF_KIND_UTM_CLICK] = {"utm_click", {"UTM Click", "UTM Link Clicked"}},
    [LF_KIND_QR_SCAN] = {"qr_scan", {"QR Code Scanned", "QR Scanned"}},
    [LF_KIND_FORM_SUBMIT] = {"form_submit", {"Form Submitted", "Form Submit"}},
    [LF_KIND_EMAIL_OPEN] = {"email_open", {"Email Opened", "Email Open"}},
    [LF_KIND_EMAIL_CLICK] = {"email_click", {"Email Link Clicked", "Email Clicked", "Email Click"}},
    [LF_KIND_EVENT_REGISTER] = {"event_register", {"Webinar Registered", "Event Registered"}},
    [LF_KIND_EVENT_ATTEND] = {"event_attend", {"Webinar Attended", "Event Attended"}},
    [LF_KIND_ASSET_DOWNLOAD] = {"asset_download",
                                {"Asset Downloaded", "File Downloaded", "Content Downloaded"}},
    [LF_KIND_VIDEO_VIEW] = {"video_view", {"Video Playback Started", "Video Content Playing"}},
    [LF_KIND_SALES_ACCEPT] = {"sales_accept", {"Lead Accepted", "Sales Accepted"}},
    [LF_KIND_SALES_REJECT] = {"sales_reject", {"Lead Rejected", "Sales Rejected"}},
    [LF_KIND_SALES_QUALIFY] = {"sales_qualify", {"Lead Qualified", "Sales Qualified"}},
    [LF_KIND_OPPORTUNITY_CREATED] = {"opportunity_created", {"Opportunity Created"}},
    [LF_KIND_DEAL_WON] = {"deal_won", {"Deal Won", "Opportunity Won"}},
    [LF_KIND_DEAL_LOST] = {"deal_lost", {"Deal Lost", "Opportunity Lost"}},
    [LF_KIND_DISQUALIFY] = {"disqualify", {"Lead Disqualified", "Disqualified"}},
    [LF_KIND_IDENTIFY] = {"identify", {NULL}},
    [LF_KIND_ALIAS] = {"alias", {NULL}},
};

const char *lf_kind_name(lf_kind_t kind)
{
    if ((unsigned)kind >= LF_KIND__COUNT) return "other";
    return kinds[kind].name;
}

lf_kind_t lf_kind_from_name(lf_str_t name)
{
    if (name.len == 0 || !name.ptr) return LF_KIND_OTHER;
    /* The canonical names first, exactly: what leadflow itself writes (the lead hash's
     * counter fields) and what most producers send. */
    for (int k = 1; k < LF_KIND__COUNT; k++)
        if (kinds[k].name[0] == name.ptr[0] && lf_str_eq(name, kinds[k].name)) return (lf_kind_t)k;
    for (int k = 1; k < LF_KIND__COUNT; k++) {
        if (lf_str_eq_nocase(name, kinds[k].name)) return (lf_kind_t)k;
        for (int a = 0; a < LF_KIND_MAX_ALIASES && kinds[k].alias[a]; a++)
            if (lf_str_eq_nocase(name, kinds[k].alias[a])) return (lf_kind_t)k;
    }
    return LF_KIND_OTHER;
}

const char *lf_utm_name(lf_utm_t f)
{
    static const char *const names[LF_UTM__COUNT] = {"source", "medium", "campaign", "term",
                                                     "content"};
    if ((unsigned)f >= LF_UTM__COUNT) return "?";
    return names[f];
}
