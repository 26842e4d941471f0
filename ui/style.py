"""The app's CSS: answer cards, marks and hints (system fonts only, nothing fetched from outside)."""

CSS = """
.rag-answer .answer { font-size: 1.05em; margin-bottom: .25em; }
.rag-answer .searched-for { color: var(--body-text-color-subdued); font-size: .85em; }
.rag-answer .answer-meta { color: var(--body-text-color-subdued); font-size: .85em; margin-bottom: .4em; }
.source-card { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: .3em .6em; margin: .3em 0; }
.source-card summary { cursor: pointer; font-weight: 600; }
.source-card .passage, .search-hit .passage { font-size: .9em; line-height: 1.45; margin-top: .3em; }
.search-hit { border-bottom: 1px solid var(--border-color-primary); padding: .5em 0; }
.search-hit .hit-head { font-weight: 600; font-size: .9em; }
mark { background: #ffe066; color: inherit; padding: 0 .1em; border-radius: 2px; }
.rag-hint { padding: .5em .8em; border-left: 4px solid #4c8bf5; background: var(--background-fill-secondary); }
.rag-error { padding: .5em .8em; border-left: 4px solid #d93025; background: var(--background-fill-secondary); }
.upload-report .upload-failed { color: #d93025; }
.upload-report .upload-skipped, .upload-report .upload-note { color: var(--body-text-color-subdued); }
#documents th .header { white-space: nowrap; word-break: normal; overflow-wrap: normal; }
.ocr-badge { font-weight: 400; font-size: .85em; padding: 0 .35em; border-radius: 3px; border: 1px solid #b08800;
             color: #7a5d00; background: #fff8dc; }
"""
