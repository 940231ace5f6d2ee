"""placeholder"""
def is_remote(src): return src.lower().startswith(("vizier:", "xmatch:"))
