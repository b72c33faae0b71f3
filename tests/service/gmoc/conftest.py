from tests.gmoc_facility import facility

__all__ = ["facility"]
