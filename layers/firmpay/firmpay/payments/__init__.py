"""Use cases: pay links, reviews, submit/settle/release, autopay, plans, sweep."""
