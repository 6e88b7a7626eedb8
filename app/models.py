from sqlmodel import SQLModel  # tables are added here by the skeleton
