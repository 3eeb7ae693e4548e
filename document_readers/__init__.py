"""The readers of shared documents, one module a kind of file, each turning bytes into text
(`Extracted`); `document_handler.extract` picks the reader and runs it in the sandboxed worker.
"""
