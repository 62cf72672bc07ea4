"""The fake Twilio's list envelopes: the 2010-04-01 API's (page, uri...) and the v1 APIs' (meta)."""

from urllib.parse import urlencode

PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000  # Twilio's default and largest PageSize


def page(request, params, key, items):
    """Twilio's 2010-04-01 list envelope for one page (Page, PageSize) of items."""
    size = min(int(params.get("PageSize", PAGE_SIZE)), MAX_PAGE_SIZE)
    page = int(params.get("Page", 0))
    start = page * size
    chunk = items[start:start + size]
    filters = {k: v for k, v in params.items() if k not in ("Page", "PageSize", "PageToken")}

    def uri(number):
        return f"{request.path}?{urlencode({**filters, 'PageSize': size, 'Page': number})}"

    return {key: chunk, "page": page, "page_size": size, "start": start,
            "end": start + max(len(chunk) - 1, 0), "uri": uri(page), "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) if start + size < len(items) else None,
            "previous_page_uri": uri(page - 1) if page > 0 else None}


def v1_list(url, key, items):
    """A v1 API's list answer (Messaging Services, Content): one page of every item."""
    first = f"{url}?PageSize={PAGE_SIZE}&Page=0"
    meta = {"first_page_url": first, "key": key, "next_page_url": None, "page": 0, "page_size": PAGE_SIZE,
            "previous_page_url": None, "url": first}
    return {key: items, "meta": meta}
