"""The model's tools: one interface (`tools.base.Tool`), registered in one place (`registry`)."""
