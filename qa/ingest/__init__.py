"""Sources to documents to passages: files read (text, Markdown, HTML, PDF, JSONL) within a
parsing budget, page furniture left out, paragraphs split with exact character offsets."""
