FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --create-home pneumoweb \
    && mkdir -p /var/lib/pneumoweb /var/lib/pneumoweb-audit && chown pneumoweb /var/lib/pneumoweb /var/lib/pneumoweb-audit
USER pneumoweb
EXPOSE 8000
