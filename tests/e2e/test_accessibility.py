"""The accessibility audit itself: it must fail on what it is there to catch."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_audit_fails_on_low_contrast_and_names_the_element(site, new_page):
    page = new_page()
    # Grey #aaa on white is 2.3:1, below the 4.5:1 of WCAG AA. set_content keeps about:blank,
    # which the unaudited-page check ignores.
    page.set_content('<html lang="en"><head><title>t</title></head><body><main>'
                     '<p id="faint" style="color:#aaa;background:#fff">faint text</p>'
                     '</main></body></html>')
    with pytest.raises(AssertionError, match=r"(?s)serious color-contrast.*#faint"):
        site.audit(page)


def test_audit_passes_a_clean_page_at_both_widths(site, new_page):
    page = new_page()
    page.goto(site.url("/privacy"))
    site.audit(page)
    assert page.viewport_size == {"width": 1280, "height": 720}  # put back after the phone run


def test_a_page_shown_but_not_audited_fails_at_teardown(site, chromium):
    # The check in new_page's teardown, driven by hand: one page shown, none audited.
    from tests.e2e.conftest import new_page as fixture  # the fixture's generator, run directly

    make = fixture.__wrapped__(chromium)
    page = next(make)(viewport={"width": 1280, "height": 720})
    page.goto(site.url("/privacy"))
    with pytest.raises(AssertionError, match="never checked with site.audit"):
        next(make)
